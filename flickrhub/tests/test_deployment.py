"""The production shape: the compose file is valid (`docker compose config`), the image is
slim, non-root and pinned, and its entrypoint works — run here outside Docker."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
HUB_SERVICES = {"web", "worker_rest", "worker_upload", "worker_replace", "worker_callbacks"}


def compose_command() -> list[str] | None:
    """`docker compose` (the plugin) if present, else Debian's `docker-compose`."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.fixture
def compose(tmp_path):
    command = compose_command()
    if command is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("neither `docker compose` nor `docker-compose` is installed (.ci/run installs it)")
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    project = tmp_path / "docker"
    project.mkdir()
    shutil.copy(ROOT / "docker" / "compose.yaml", project / "compose.yaml")
    env = (ROOT / "docker" / "env.example").read_text()
    for name, value in {
        "SECRET_KEY": "s" * 60,
        "FLICKRHUB_ENCRYPTION_KEYS": "3n2dvb1mQnZt8y0dC0d5yP3g2fZf7H0m4Yq1mYk2s8U=",
        "POSTGRES_PASSWORD": "pg-pass",
        "RABBITMQ_PASSWORD": "mq-pass",
        "WORKER_REST_INSTANCES": "3",
    }.items():
        env = re.sub(rf"^{name}=.*$", f"{name}={value}", env, flags=re.MULTILINE)
    (project / ".env").write_text(env)

    def config(*, drop: str = "") -> subprocess.CompletedProcess:
        if drop:
            text = (project / ".env").read_text()
            (project / ".env").write_text(re.sub(rf"^{drop}=.*\n", "", text, flags=re.MULTILINE))
        return subprocess.run(
            [*command, "-f", "compose.yaml", "config"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.endswith(("_PASSWORD", "_INSTANCES"))},
        )

    return config


def test_the_compose_file_is_valid_and_brings_up_the_whole_stack(compose):
    result = compose()
    assert result.returncode == 0, result.stderr
    stack = yaml.safe_load(result.stdout)
    services = stack["services"]
    assert set(services) == HUB_SERVICES | {"migrate", "rabbitmq", "redis", "postgres"}

    for name in HUB_SERVICES:
        service = services[name]
        # migrations run once, before anything that uses the database
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        for dependency in ("postgres", "rabbitmq", "redis"):
            assert service["depends_on"][dependency]["condition"] == "service_healthy", name
        assert service["healthcheck"]["test"][:3] == ["CMD", "/app/docker/entrypoint.sh", "health"], name
        environment = service["environment"]
        assert environment["SERVICE_ENV"] == "production"
        assert environment["DATABASE_URL"] == "postgres://flickrhub:pg-pass@postgres:5432/flickrhub"
        assert environment["BROKER_URL"].startswith("amqp://flickrhub:mq-pass@rabbitmq:5672/")
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert environment["SECRET_KEY"] == "s" * 60  # from the env file
    assert services["migrate"]["command"] == ["migrate"]
    assert services["worker_rest"]["command"] == ["worker", "flickr_rest"]
    assert services["worker_callbacks"]["command"] == ["worker", "flickr_callbacks"]
    assert services["worker_rest"]["deploy"]["replicas"] == 3  # WORKER_REST_INSTANCES

    # web and the file workers share the staged uploads where UPLOAD_STAGING_DIR points
    for name in ("web", "worker_upload", "worker_replace"):
        volumes = services[name]["volumes"]
        mount = (
            volumes[0] if isinstance(volumes[0], str) else f"{volumes[0]['source']}:{volumes[0]['target']}"
        )
        assert mount.startswith("uploads:/srv/flickrhub/uploads"), name
        assert services[name]["environment"]["UPLOAD_STAGING_DIR"] == "/srv/flickrhub/uploads"
    assert "volumes" not in services["worker_rest"]

    # a stopped worker gets longer than its jobs' wait before it is killed
    assert services["worker_upload"]["environment"]["WORKER_SHUTDOWN_TIMEOUT_MS"] in ("300000", 300000)
    assert "appendonly" in " ".join(services["redis"]["command"])
    for name in ("rabbitmq", "redis", "postgres"):
        assert services[name]["healthcheck"]["test"], name
    assert set(stack["volumes"]) == {"uploads", "postgres", "rabbitmq", "redis"}


def test_compose_refuses_to_start_without_the_database_password(compose):
    result = compose(drop="POSTGRES_PASSWORD")
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in docker/.env" in result.stderr + result.stdout


def test_the_image_is_slim_non_root_pinned_and_collects_static_files():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user and not user[-1].startswith(("root", "0"))
    assert "pip install --no-compile -r requirements/prod.txt" in dockerfile
    assert "collectstatic" in dockerfile
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in dockerfile
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which does not exist"
    for requirements in ("base.txt", "prod.txt"):
        for line in (ROOT / "requirements" / requirements).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                assert re.match(r"^[A-Za-z0-9_.\-\[\]]+==[\w.]+$", line), (
                    f"{requirements}: {line} is not pinned"
                )
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", "docker/.env", ".venv", ".git"} <= set(ignored)


# --- the entrypoint, outside Docker -------------------------------------------------------------


@pytest.fixture
def entry_env(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    return {
        **clean,
        "PYTHON": sys.executable,
        "FLICKRHUB_DATA_DIR": str(tmp_path / "data"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "WORKER_HEARTBEAT_FILE": str(tmp_path / "alive"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }


def run_entry(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args], cwd="/", env=env, capture_output=True, text=True, timeout=timeout
    )


def wait_for(url: str, timeout: float = 30, **kw) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(url, timeout=5, **kw)
        except (requests.ConnectionError, requests.Timeout):  # still starting (a busy machine)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_entrypoint_migrate_creates_the_database(entry_env, tmp_path):
    result = run_entry(entry_env, "migrate")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "flickrhub.sqlite3").stat().st_size > 0


def test_entrypoint_without_a_queue_says_what_it_needs(entry_env):
    result = run_entry(entry_env, "worker")
    assert result.returncode == 64
    assert "worker needs at least one queue" in result.stderr


def test_entrypoint_web_serves_reports_healthy_exports_metrics_and_stops_on_sigterm(entry_env, tmp_path):
    assert run_entry(entry_env, "migrate").returncode == 0
    stale = tmp_path / "metrics" / "counter_99999.db"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"left over from the last run")
    port = free_port()
    env = {
        **entry_env,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "2",
        "WEB_GRACEFUL_TIMEOUT": "5",
    }
    web = subprocess.Popen(["sh", str(ENTRYPOINT), "web"], env=env, cwd="/", start_new_session=True)
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        assert not stale.exists()  # a fresh multiprocess directory for this run
        assert run_entry(env, "health", "web").returncode == 0
        for _ in range(4):
            requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert metrics.status_code == 200
        # both gunicorn workers' requests, added up through PROMETHEUS_MULTIPROC_DIR
        assert "django_http_requests_total_by_method_total" in metrics.text
        assert any((tmp_path / "metrics").iterdir())
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        assert web.wait(timeout=20) == 0
    assert run_entry(env, "health", "web").returncode == 1  # nothing answers now


def test_entrypoint_worker_runs_a_pool_with_heartbeat_and_metrics_and_stops_on_sigterm(entry_env, tmp_path):
    assert run_entry(entry_env, "migrate").returncode == 0
    port = free_port()
    env = {
        **entry_env,
        "WORKER_HEARTBEAT_SECONDS": "1",
        "WORKER_METRICS_HOST": "127.0.0.1",
        "WORKER_METRICS_PORT": str(port),
        "WORKER_SHUTDOWN_TIMEOUT_MS": "2000",
    }
    assert run_entry(env, "health", "worker").returncode == 1  # no heartbeat yet
    worker = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "worker", "flickr_rest"],
        env=env,
        cwd="/",
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz", timeout=60).status_code == 200
        assert wait_for(f"http://127.0.0.1:{port}/metrics").status_code == 200
        deadline = time.monotonic() + 30
        while not (tmp_path / "alive").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert run_entry(env, "health", "worker").returncode == 0
    finally:
        # SIGTERM to the pool's main process, as `docker stop` does; it passes it on to its
        # worker processes (a second SIGTERM would make them quit at once: Dramatiq's design).
        os.kill(worker.pid, signal.SIGTERM)
        output = worker.communicate(timeout=30)[0].decode()
    assert worker.returncode == 0, output[-3000:]
    assert '"event": "worker_stopping"' in output
    # a heartbeat older than three intervals (30 s at least) is a dead worker
    old = time.time() - 120
    os.utime(tmp_path / "alive", (old, old))
    assert run_entry(env, "health", "worker").returncode == 1
