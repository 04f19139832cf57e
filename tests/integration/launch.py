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
import subprocess
import sys
import tempfile

from tests.stack import AMQP_URL, PG_URL, REDIS_URL, ROOT, cleanup, create_vhost, missing_services


def main(argv: list[str]) -> int:
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    missing = missing_services()
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
    create_vhost(run_id)
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
        cleanup(run_id, data_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
