"""The machine's real services and the hub's processes, shared by the integration tests
(`tests/integration/launch.py`, `conftest.py`) and the benchmarks (`bench/`).

A run gets its own RabbitMQ vhost, PostgreSQL database and Redis key prefix, named after its
`run_id`, and `cleanup` removes all three — so the services are left as they were found. `Hub`
starts gunicorn and `rundramatiq` pools as separate processes, as production runs them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_URL = os.environ.get("INTEGRATION_PG_URL", "postgres://postgres@127.0.0.1:5432")
AMQP_URL = os.environ.get("INTEGRATION_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
REDIS_URL = os.environ.get("INTEGRATION_REDIS_URL", "redis://127.0.0.1:6379/0")


def missing_services() -> list[str]:
    """What is missing among PostgreSQL, Redis, RabbitMQ and rabbitmqctl, one line each."""
    missing = []
    try:
        import psycopg

        psycopg.connect(f"{PG_URL}/postgres", connect_timeout=3).close()
    except Exception as exc:
        missing.append(f"PostgreSQL at {PG_URL} ({type(exc).__name__}: {exc})")
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        missing.append(f"Redis at {REDIS_URL} ({type(exc).__name__})")
    try:
        import pika

        pika.BlockingConnection(
            pika.URLParameters(f"{AMQP_URL}/%2F?connection_attempts=1&socket_timeout=3")
        ).close()
    except Exception as exc:
        missing.append(f"RabbitMQ at {AMQP_URL} ({type(exc).__name__})")
    if shutil.which("rabbitmqctl") is None:
        missing.append("rabbitmqctl (needed to create the run's own vhost)")
    return missing


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def create_vhost(run_id: str) -> None:
    rabbitmqctl("add_vhost", run_id)
    rabbitmqctl("set_permissions", "-p", run_id, "guest", ".*", ".*", ".*")


def create_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def cleanup(run_id: str, data_dir: str | None = None, *, label: str = "integration") -> None:
    """Removes the run's vhost, databases (`run_id`, `test_<run_id>`), Redis keys and data
    directory. Each step is tried even if an earlier one failed."""
    try:
        rabbitmqctl("delete_vhost", run_id)
    except Exception as exc:
        print(f"{label}: could not delete vhost {run_id}: {exc}", file=sys.stderr)
    try:
        import psycopg

        with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
            for name in (run_id, f"test_{run_id}"):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception as exc:
        print(f"{label}: could not drop databases of {run_id}: {exc}", file=sys.stderr)
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{run_id}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    except Exception as exc:
        print(f"{label}: could not delete Redis keys of {run_id}: {exc}", file=sys.stderr)
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, timeout: float = 30, what: str = "server") -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"the {what} at {url} did not answer within {timeout:.0f} s")


def wait_until(condition: Any, what: str, seconds: float = 5.0) -> None:
    """Polls `condition` every 10 ms; fails the test naming `what` if it is still false after
    `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds}s for {what}"
        time.sleep(0.01)


def descendants(pid: int) -> list[int]:
    """The process ids under `pid` (children, grandchildren…), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Hub:
    """The hub's processes — gunicorn and `rundramatiq` pools — started and stopped by a test
    or a benchmark, each in its own process group."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}
        self._log_files: list[IO[Any]] = []

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # closed in stop()
        self._log_files.append(log)
        # each process group adds up its own metrics (prometheus multiprocess mode)
        metrics_dir = self.log_dir / f"metrics-{name}"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_web(self, workers: int = 2, threads: int = 4) -> None:
        self.web = self._spawn(
            "web",
            [
                str(BIN / "gunicorn"),
                # production's settings (docker/entrypoint.sh), the address and sizes given here
                "-c",
                "python:flickrhub.gunicorn",
                "flickrhub.wsgi",
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                str(workers),
                "--threads",
                str(threads),
                "--graceful-timeout",
                "5",
            ],
        )
        try:
            wait_for_http(f"{self.url}/health", what="web process")
        except RuntimeError:
            raise AssertionError(f"the web process did not start: {self.logs()}") from None

    def start_worker(
        self, queue: str, threads: int = 4, processes: int = 1, shutdown_ms: int = 5000, metrics_port: int = 0
    ) -> subprocess.Popen:
        proc = self._spawn(
            f"worker-{queue}",
            [
                sys.executable,
                "manage.py",
                "rundramatiq",
                "--processes",
                str(processes),
                "--threads",
                str(threads),
                "--queues",
                queue,
                "--worker-shutdown-timeout",
                str(shutdown_ms),
            ],
            env={"WORKER_METRICS_PORT": str(metrics_port), "WORKER_METRICS_HOST": "127.0.0.1"},
        )
        self.workers[queue] = proc
        return proc

    def kill_worker(self, queue: str) -> None:
        """SIGKILL the whole worker process group: no cleanup, no ack, like a crash."""
        proc = self.workers.pop(queue)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_worker(self, queue: str, timeout: float = 60) -> int:
        """SIGTERM to the pool's main process only, as `docker stop` does; returns its exit code."""
        proc = self.workers.pop(queue)
        os.kill(proc.pid, signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def web_pids(self) -> list[int]:
        """gunicorn's worker processes (not its master)."""
        return descendants(self.web.pid) if self.web is not None else []

    def worker_pids(self, queue: str) -> list[int]:
        """The Dramatiq worker processes of a queue's pool (not the pool's master)."""
        proc = self.workers.get(queue)
        return descendants(proc.pid) if proc is not None else []

    def stop(self) -> None:
        procs = [p for p in [self.web, *self.workers.values()] if p is not None]
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in procs:
            _stop(proc, signalled=True)
        self.web, self.workers = None, {}
        for log in self._log_files:
            log.close()
        self._log_files = []

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


def _stop(proc: subprocess.Popen, *, signalled: bool = False) -> None:
    """SIGTERM a process group, then SIGKILL it if it has not ended within 15 s."""
    if not signalled:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)
