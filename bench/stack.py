"""The benchmark's own world: a RabbitMQ vhost, a PostgreSQL database and a Redis key prefix
named after the run, the sandbox in its own process, and the hub's processes — in the
production shape (gunicorn, `rundramatiq` pools) or the embedded default (`manage.py serve`,
SQLite). Everything is removed at the end, pass or fail (`tests/stack.py` does the removing,
as for the integration tests)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from tests.stack import (
    AMQP_URL,
    BIN,
    PG_URL,
    REDIS_URL,
    ROOT,
    Hub,
    cleanup,
    create_database,
    create_vhost,
    descendants,
    free_port,
    missing_services,
    wait_for_http,
)

HUB_QUEUES = ("flickr_rest", "flickr_upload", "flickr_replace", "flickr_callbacks", "flickr_dlq")
# Variables of the measuring shell that must not leak into the hubs it starts.
_HUB_VARS = ("DATABASE_URL", "BROKER_URL", "REDIS_URL", "CACHE_KEY_PREFIX", "DJANGO_SETTINGS_MODULE")


class Sandbox:
    """`python -m bench.sandbox` in its own process, steered over HTTP."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_dir / "sandbox.log", "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.sandbox", "--port", str(self.port)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_http(f"{self.url}/__sandbox/", what="sandbox")

    def reset(self) -> None:
        """No faults, no quota, counters at zero."""
        requests.delete(f"{self.url}/__sandbox/faults", timeout=10).raise_for_status()
        requests.post(f"{self.url}/__sandbox/quota", json={"per_hour": None}, timeout=10).raise_for_status()
        requests.post(f"{self.url}/__bench/reset", timeout=10).raise_for_status()

    def reset_counters(self) -> None:
        requests.post(f"{self.url}/__bench/reset", timeout=10).raise_for_status()

    def fault(self, kind: str, **options: Any) -> None:
        requests.post(
            f"{self.url}/__sandbox/faults", json={"kind": kind, **options}, timeout=10
        ).raise_for_status()

    def clear_faults(self) -> None:
        requests.delete(f"{self.url}/__sandbox/faults", timeout=10).raise_for_status()

    def set_quota(self, per_window: int | None, window_seconds: float | None = None) -> None:
        requests.post(
            f"{self.url}/__sandbox/quota",
            json={"per_hour": per_window, "window_seconds": window_seconds},
            timeout=10,
        ).raise_for_status()

    def stats(self) -> dict[str, Any]:
        answer = requests.get(f"{self.url}/__bench/stats", timeout=30)
        answer.raise_for_status()
        return dict(answer.json())

    def calls(self, limit: int = 1000) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/__sandbox/calls", params={"limit": limit}, timeout=30)
        answer.raise_for_status()
        return list(answer.json())

    def users(self) -> list[dict[str, Any]]:
        return list(requests.get(f"{self.url}/__sandbox/users", timeout=10).json())

    def stop(self) -> None:
        _terminate(self.proc)
        self._log.close()


class JobsDb:
    """The hub's job table, read and emptied by plain SQL (the measuring process loads no Django)."""

    def __init__(self, *, pg_url: str | None = None, sqlite_path: Path | None = None) -> None:
        self.pg_url = pg_url
        self.sqlite_path = sqlite_path

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.pg_url is not None:
            import psycopg

            with psycopg.connect(self.pg_url, autocommit=True) as conn:
                cursor = conn.execute(sql)
                return list(cursor.fetchall()) if cursor.description else []
        assert self.sqlite_path is not None
        with sqlite3.connect(self.sqlite_path, timeout=60) as conn:
            return list(conn.execute(sql).fetchall())

    def states(self) -> dict[str, int]:
        return {state: n for state, n in self._rows("SELECT state, COUNT(*) FROM jobs_job GROUP BY state")}

    def attempts_over(self, attempts: int) -> int:
        return int(self._rows(f"SELECT COUNT(*) FROM jobs_job WHERE attempts > {int(attempts)}")[0][0])

    def clear(self) -> None:
        for table in (
            "jobs_callbackattempt",
            "jobs_callbackdelivery",
            "jobs_failedjob",
            "flickrhub_jobattempt",
            "jobs_idempotencykey",
            "jobs_job",
        ):
            self._rows(f"DELETE FROM {table}")
        try:
            self._rows("DELETE FROM bench_baselinerow")
        except Exception:  # noqa: S110 (the baseline table exists only where it was migrated)
            pass


class BenchStack:
    """`with BenchStack(...) as stack:` — the run's services, sandbox and hub environments."""

    def __init__(self, *, keep_logs: bool = False) -> None:
        self.run_id = f"flickrhub_bench_{secrets.token_hex(4)}"
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"{self.run_id}_"))
        self.log_dir = self.data_dir / "logs"
        self.log_dir.mkdir()
        self.keep_logs = keep_logs
        self.sandbox: Sandbox | None = None
        self.hubs: list[Hub] = []
        self.embedded: subprocess.Popen | None = None
        self._embedded_log: Any = None
        self.world: dict[str, str] = {}
        self.embedded_world: dict[str, str] = {}
        self._clients: dict[str, dict[str, str]] = {}

    # ------------------------------------------------------------------ life

    def __enter__(self) -> BenchStack:
        missing = missing_services()
        if missing:
            raise RuntimeError("bench: missing " + "; ".join(missing))
        signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            create_vhost(self.run_id)
            create_database(self.run_id)
            self.sandbox = Sandbox(self.log_dir)
            self._manage(self.production_env(), "migrate", "--no-input", "-v", "0")
            self.world = self._world(self.production_env())
            self._manage(self.embedded_env(), "migrate", "--no-input", "-v", "0")
            self.embedded_world = self._world(self.embedded_env())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for hub in self.hubs:
            hub.stop()
        self.stop_embedded()
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.keep_logs or exc_type is not None:
            kept = Path(tempfile.mkdtemp(prefix="flickrhub_bench_logs_"))
            for log in self.log_dir.iterdir():  # the sandbox's and embedded logs, each hub's folder
                log.rename(kept / log.name)
            print(f"bench: logs kept in {kept}", file=sys.stderr)
        cleanup(self.run_id, str(self.data_dir), label="bench")

    # ------------------------------------------------------------------ environments

    def _base_env(self) -> dict[str, str]:
        from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET

        assert self.sandbox is not None
        base = self.sandbox.url
        env = {k: v for k, v in os.environ.items() if k not in _HUB_VARS}
        env.update(
            {
                "FLICKR_REST_URL": f"{base}/services/rest/",
                "FLICKR_UPLOAD_URL": f"{base}/services/upload/",
                "FLICKR_REPLACE_URL": f"{base}/services/replace/",
                "FLICKR_API_KEY": SANDBOX_CONSUMER_KEY,
                "FLICKR_API_SECRET": SANDBOX_CONSUMER_SECRET,
                # The sandbox's quota is off unless a row sets one; so is the hub's.
                "FLICKR_QUOTA_PER_HOUR": "36000000",
                "BENCH_ENDPOINTS": "1",
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def production_env(self, **overrides: str) -> dict[str, str]:
        from cryptography.fernet import Fernet

        env = self._base_env()
        keys = getattr(self, "_keys", None) or {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FLICKRHUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        }
        self._keys = keys
        env.update(
            {
                **keys,
                "SERVICE_ENV": "production",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "DATABASE_URL": f"{PG_URL}/{self.run_id}",
                "BROKER_URL": f"{AMQP_URL}/{self.run_id}",
                "REDIS_URL": REDIS_URL,
                "CACHE_KEY_PREFIX": self.run_id,
                "FLICKRHUB_DATA_DIR": str(self.data_dir / "production"),
                "UPLOAD_STAGING_DIR": str(self.data_dir / "production" / "uploads"),
            }
        )
        env.update(overrides)
        return env

    def embedded_env(self, **overrides: str) -> dict[str, str]:
        env = self._base_env()
        # Nothing set but the data directory: SQLite, in-memory broker and local-memory cache,
        # generated keys — the embedded default.
        env["FLICKRHUB_DATA_DIR"] = str(self.data_dir / "embedded")
        env.update(overrides)
        return env

    @property
    def pg_url(self) -> str:
        return f"{PG_URL}/{self.run_id}"

    @property
    def embedded_db(self) -> Path:
        return self.data_dir / "embedded" / "flickrhub.sqlite3"

    def jobs_db(self, embedded: bool) -> JobsDb:
        return JobsDb(sqlite_path=self.embedded_db) if embedded else JobsDb(pg_url=self.pg_url)

    def _manage(self, env: dict[str, str], *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def _world(self, env: dict[str, str], name: str = "bench") -> dict[str, str]:
        assert self.sandbox is not None
        done = subprocess.run(
            [sys.executable, "-m", "bench.world", "--sandbox", self.sandbox.url, "--name", name],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    def clients(self) -> dict[str, dict[str, str]]:
        """The fairness rows' API clients (production), each with an account of its own."""
        if not self._clients:
            for name in ("flood", "light1", "light2", "extra"):
                self._clients[name] = self._world(self.production_env(), name=name)
        return self._clients

    def seed(self, count: int, prefix: str, *, embedded: bool, **overrides: str) -> None:
        """`count` queued jobs written (and, in production, published) by `bench.seed`, with
        the hub's settings `overrides` (e.g. JOB_RETRY_ATTEMPTS, written into each row)."""
        world = self.embedded_world if embedded else self.world
        args = ["--user-id", world["user_id"], "--count", str(count), "--prefix", prefix]
        env = self.embedded_env(**overrides) if embedded else self.production_env(**overrides)
        subprocess.run(
            [sys.executable, "-m", "bench.seed", *args, *([] if embedded else ["--publish"])],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=3600,
        )

    # ------------------------------------------------------------------ hubs

    def hub(self, **overrides: str) -> Hub:
        """A production-shape hub (not started)."""
        log_dir = self.log_dir / f"hub{len(self.hubs)}"
        log_dir.mkdir()
        hub = Hub(self.production_env(**overrides), log_dir)
        self.hubs.append(hub)
        return hub

    def start_embedded(self, **overrides: str) -> str:
        """`manage.py serve`: the whole hub in one process. Returns its URL."""
        self.stop_embedded()
        port = free_port()
        self._embedded_log = open(self.log_dir / "embedded.log", "ab")  # closed in stop_embedded()
        self.embedded = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=ROOT,
            env=self.embedded_env(**overrides),
            stdout=self._embedded_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/health", timeout=60, what="embedded hub")
        return url

    def stop_embedded(self) -> None:
        if self.embedded is not None:
            _terminate(self.embedded, timeout=60)
            self.embedded = None
        if self._embedded_log is not None:
            self._embedded_log.close()
            self._embedded_log = None

    def embedded_pid(self) -> int:
        assert self.embedded is not None
        return self.embedded.pid

    # ------------------------------------------------------------------ the bare baseline

    def bare_env(self, *, stub: bool) -> dict[str, str]:
        assert self.sandbox is not None
        env = {k: v for k, v in os.environ.items() if k not in _HUB_VARS}
        env.update(
            {
                "BENCH_BARE_BROKER": "stub" if stub else f"{AMQP_URL}/{self.run_id}",
                "BENCH_SANDBOX_URL": self.sandbox.url,
                "BENCH_TOKEN": self.world["token"],
                "BENCH_TOKEN_SECRET": self.world["token_secret"],
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def bare_enqueue(self, count: int, prefix: str) -> None:
        subprocess.run(
            [sys.executable, "-c", f"from bench.bare_actor import enqueue; enqueue({count}, {prefix!r})"],
            cwd=ROOT,
            env=self.bare_env(stub=False),
            check=True,
            timeout=600,
        )

    def bare_worker(self, *, threads: int, processes: int = 1) -> subprocess.Popen:
        log = open(self.log_dir / "bare-worker.log", "ab")
        return subprocess.Popen(
            [
                str(BIN / "dramatiq"),
                "bench.bare_actor",
                "--processes",
                str(processes),
                "--threads",
                str(threads),
                "--queues",
                "bench_bare",
            ],
            cwd=ROOT,
            env=self.bare_env(stub=False),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    # ------------------------------------------------------------------ between measurements

    def purge_queues(self) -> None:
        """Empties the run's queues over AMQP (one connection: rabbitmqctl takes a second each)."""
        import pika
        import pika.exceptions

        connection = pika.BlockingConnection(pika.URLParameters(f"{AMQP_URL}/{self.run_id}"))
        try:
            channel = connection.channel()
            for queue in (*HUB_QUEUES, "bench_bare"):
                for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                    try:
                        channel.queue_purge(name)
                    except pika.exceptions.ChannelClosedByBroker:
                        channel = connection.channel()  # not declared yet: the broker closed it
        finally:
            connection.close()

    def forget_redis(self) -> None:
        """Empties this run's cache: no cached answer, quota reservation or circuit carries over."""
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{self.run_id}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])

    def fresh(self, *, embedded: bool = False) -> None:
        """Between measurements: no jobs, empty queues, a clean cache and a clean sandbox."""
        assert self.sandbox is not None
        self.sandbox.reset()
        self.jobs_db(embedded).clear()
        if not embedded:
            self.purge_queues()
            self.forget_redis()

    def queue_depth(self, queue: str) -> int:
        out = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", self.run_id, "name", "messages"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == queue:
                return int(parts[1])
        return 0


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _terminate(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # children that left the group would be orphans: none of ours do, but check
    for pid in descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_until(
    predicate: Any,
    timeout: float,
    interval: float = 0.5,
    what: str = "condition",
    *,
    progress: Any = None,
    stall: float | None = None,
) -> None:
    """Polls `predicate` until true or `timeout`. With `progress` (a callable whose value changes
    as the work moves) and `stall`, fails as soon as that value stays the same for `stall`
    seconds, instead of waiting out the timeout for work that will not come."""
    deadline = time.monotonic() + timeout
    seen, since = None, time.monotonic()
    while time.monotonic() < deadline:
        if predicate():
            return
        if progress is not None and stall is not None:
            now, value = time.monotonic(), progress()
            if value != seen:
                seen, since = value, now
            elif now - since > stall:
                raise TimeoutError(f"bench: {what}: no progress for {stall:.0f} s (at {value})")
        time.sleep(interval)
    raise TimeoutError(f"bench: timed out after {timeout:.0f} s waiting for {what}")
