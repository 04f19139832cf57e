"""Runs the integration tests against the machine's real RabbitMQ, Redis and PostgreSQL.

Each run gets its own RabbitMQ vhost, its own PostgreSQL database (pytest-django creates and
drops `test_<name>`) and its own Redis key prefix, all removed at the end — pass or fail — so
the services are left as they were found. With CI=true a missing service fails the run; on a
developer's machine it skips with a line saying what is missing.

    python -m tests.integration.launch [pytest args]
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("INTEGRATION_PG_URL", "postgres://postgres@127.0.0.1:5432")
AMQP_URL = os.environ.get("INTEGRATION_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
REDIS_URL = os.environ.get("INTEGRATION_REDIS_URL", "redis://127.0.0.1:6379/0")


def _missing_services() -> list[str]:
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


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _cleanup(run_id: str, data_dir: str) -> None:
    try:
        _rabbitmqctl("delete_vhost", run_id)
    except Exception as exc:
        print(f"integration: could not delete vhost {run_id}: {exc}", file=sys.stderr)
    try:
        import psycopg

        with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
            for name in (run_id, f"test_{run_id}"):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception as exc:
        print(f"integration: could not drop databases of {run_id}: {exc}", file=sys.stderr)
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{run_id}:*", count=1000))
        if keys:
            client.delete(*keys)
    except Exception as exc:
        print(f"integration: could not delete Redis keys of {run_id}: {exc}", file=sys.stderr)
    shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    missing = _missing_services()
    if missing:
        for line in missing:
            print(f"integration: missing {line}", file=sys.stderr)
        if ci:
            print("integration: FAILED — CI=true requires every service.", file=sys.stderr)
            return 1
        print("integration: skipped (services missing; CI=true would fail here).")
        return 0

    from cryptography.fernet import Fernet

    run_id = f"flickrhub_it_{secrets.token_hex(4)}"
    data_dir = tempfile.mkdtemp(prefix=f"{run_id}_")
    _rabbitmqctl("add_vhost", run_id)
    _rabbitmqctl("set_permissions", "-p", run_id, "guest", ".*", ".*", ".*")
    env = {
        **os.environ,
        "INTEGRATION_RUN_ID": run_id,
        "DATABASE_URL": f"{PG_URL}/{run_id}",
        "BROKER_URL": f"{AMQP_URL}/{run_id}",
        "REDIS_URL": REDIS_URL,
        "CACHE_KEY_PREFIX": run_id,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FLICKRHUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "FLICKRHUB_DATA_DIR": data_dir,
        "PYTHONUNBUFFERED": "1",
    }
    try:
        return subprocess.call(
            [
                sys.executable,
                "-m",
                "pytest",
                "--rootdir",
                str(ROOT),
                "-o",
                "timeout=300",
                *([] if any(a.startswith("tests/") for a in argv) else ["tests/integration"]),
                *argv,
            ],
            cwd=ROOT,
            env=env,
        )
    finally:
        _cleanup(run_id, data_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
