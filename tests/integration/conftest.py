"""A real hub for integration tests: gunicorn and one `rundramatiq` pool per queue, as
separate processes, on this run's own PostgreSQL database, RabbitMQ vhost and Redis prefix,
calling the sandbox Flickr served by the test process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _launched_by_the_launcher() -> None:
    if not os.environ.get("INTEGRATION_RUN_ID"):
        pytest.fail(
            "Integration tests create their own vhost, database and Redis prefix: run them with "
            "`make test-integration` (python -m tests.integration.launch)."
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hub:
    """The hub's processes, started and stopped by a test."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}
        self._log_files: list[Any] = []

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")
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

    def start_web(self) -> None:
        self.web = self._spawn(
            "web",
            [
                str(BIN / "gunicorn"),
                "flickrhub.wsgi",
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                "2",
                "--threads",
                "4",
                "--graceful-timeout",
                "5",
            ],
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise AssertionError(f"the web process did not start: {self.logs()}")

    def start_worker(
        self, queue: str, threads: int = 4, shutdown_ms: int = 5000, metrics_port: int = 0, processes: int = 1
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

    def stop_worker(self, queue: str, timeout: float = 60) -> int:
        """SIGTERM to the pool's main process only, as `docker stop` does; returns its exit code."""
        proc = self.workers.pop(queue)
        os.kill(proc.pid, signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def kill_worker(self, queue: str) -> None:
        """SIGKILL the whole worker process group: no cleanup, no ack, like a crash."""
        proc = self.workers.pop(queue)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        procs = [p for p in [self.web, *self.workers.values()] if p is not None]
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for log in self._log_files:
            log.close()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


def hub_env(sandbox_url: str, **overrides: str) -> dict[str, str]:
    from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET

    db = connection.settings_dict
    env = {
        **os.environ,
        # the test database pytest-django created, so the hub's processes see the test's rows
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "FLICKR_REST_URL": f"{sandbox_url}/services/rest/",
        "FLICKR_UPLOAD_URL": f"{sandbox_url}/services/upload/",
        "FLICKR_REPLACE_URL": f"{sandbox_url}/services/replace/",
        "FLICKR_API_KEY": SANDBOX_CONSUMER_KEY,
        "FLICKR_API_SECRET": SANDBOX_CONSUMER_SECRET,
        "FLICKR_TIMEOUT_SECONDS": "10",
        "JOB_SWEEP_INTERVAL_SECONDS": "1",
        "JOB_RETRY_MIN_BACKOFF_MS": "50",
        "JOB_RETRY_MAX_BACKOFF_MS": "200",
        "DRAMATIQ_NPROCS": "1",
        "LOG_LEVEL": "INFO",
        "WORKER_METRICS_PORT": "0",
        "WORKER_HEARTBEAT_SECONDS": "1",
    }
    env.update(overrides)
    return env


@pytest.fixture
def make_hub(transactional_db: Any, sandbox: Any, tmp_path: Path) -> Iterator[Any]:
    hubs: list[Hub] = []

    def make(**overrides: str) -> Hub:
        log_dir = tmp_path / f"hub{len(hubs)}"
        log_dir.mkdir()
        # the web process stages upload files where the upload and replace workers read them
        overrides.setdefault("UPLOAD_STAGING_DIR", str(log_dir / "uploads"))
        hub = Hub(hub_env(sandbox.url, **overrides), log_dir)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.stop()


def wait_for_state(hub: Hub, api_key: str, job_id: str, states: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    data: dict = {}
    while time.monotonic() < deadline:
        response = requests.get(
            f"{hub.url}/api/v1/flickr/jobs/{job_id}",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=5,
        )
        data = response.json()["data"]
        if data["state"] in states:
            return data
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} stayed {data.get('state')}; logs:\n{hub.logs()[-5000:]}")
