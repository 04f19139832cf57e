"""A real hub for integration tests: gunicorn and one `rundramatiq` pool per queue, as
separate processes, on this run's own PostgreSQL database, RabbitMQ vhost and Redis prefix,
calling the sandbox Flickr served by the test process."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection

from tests.stack import ROOT, Hub, free_port

__all__ = ["ROOT", "Hub", "free_port", "hub_env", "wait_for_state"]


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
        # The quota out of the way unless a test sets one (the default paces one call a second).
        "FLICKR_QUOTA_PER_HOUR": "36000000",
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
