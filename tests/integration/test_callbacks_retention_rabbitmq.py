"""Callbacks and retention on real RabbitMQ and PostgreSQL: a `rundramatiq` worker on the
`flickr_callbacks` queue calls a loopback receiver back, retries it, signs it; `purge_jobs`
deletes expired jobs (two at once, sharing the work) and gunicorn answers 410 for them."""

from __future__ import annotations

import hashlib
import hmac
import re
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from standardwebhooks import Webhook

from jobs.models import CallbackDelivery, Job, PurgedJob
from jobs.tests.callback_receiver import Receiver, Reply
from tests.integration.conftest import ROOT, wait_for_state


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def wait_for_delivery(job_id: str, state: str, timeout: float = 60) -> CallbackDelivery:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery = CallbackDelivery.objects.filter(job_id=job_id).first()
        if delivery is not None and delivery.state == state:
            return delivery
        time.sleep(0.1)
    raise AssertionError(f"the delivery of job {job_id} did not become {state}")


def test_a_callback_through_rabbitmq_is_retried_signed_and_recorded(make_hub, world, receiver):
    receiver.script = [Reply(500, body=b"not yet"), Reply(200)]
    hub = make_hub(CALLBACK_ALLOWED_HOSTS="127.0.0.1", CALLBACK_RETRY_DELAY_MS="100")
    hub.start_web()
    hub.start_worker("flickr_rest")
    hub.start_worker("flickr_callbacks", threads=2)
    headers = {"Authorization": f"Bearer {world.alpha.key}"}
    user_id = str(world.alpha.accounts[0].user_id)

    response = requests.post(
        f"{hub.url}/api/v1/flickr/rest",
        json={
            "method": "flickr.test.echo",
            "params": {"n": "7"},
            "user_id": user_id,
            "callback_url": receiver.url,
            "callback_secret": "legacy-shared-secret",
            "meta": {"order": 42},
        },
        headers={**headers, "X-Request-ID": "it-callback-1"},
        timeout=15,
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["data"]["job_id"]
    wait_for_state(hub, world.alpha.key, job_id, {"completed"})

    first, second = receiver.wait_for(2, timeout=60)
    secret = requests.get(f"{hub.url}/api/v1/flickr/callbacks/secret", headers=headers, timeout=5).json()[
        "data"
    ]["secret"]
    for request in (first, second):
        payload = Webhook(secret).verify(request.body, request.headers)
        assert (
            request.headers["X-Signature"]
            == hmac.new(b"legacy-shared-secret", request.body, hashlib.sha256).hexdigest()
        )
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert payload["job_id"] == job_id and payload["state"] == "completed"
    assert payload["result"]["n"] == {"_content": "7"}
    assert (payload["trace_id"], payload["meta"], payload["queue"]) == (
        "it-callback-1",
        {"order": 42},
        "flickr_rest",
    )

    delivery = wait_for_delivery(job_id, "delivered")
    assert [(a.status_code, a.response_excerpt) for a in delivery.history.all()] == [
        (500, "not yet"),
        (200, "ok"),
    ]

    worker_log = (hub.log_dir / "worker-flickr_callbacks.log").read_text()
    assert re.search(r'"event": "callback_failed".*"request_id": "it-callback-1"', worker_log)
    assert re.search(r'"event": "callback_sent"', worker_log)
    assert job_id in worker_log
    logs = hub.logs()
    assert secret not in logs and secret.removeprefix("whsec_") not in logs
    assert "legacy-shared-secret" not in logs


def purge(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "purge_jobs", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_purges_at_once_share_the_work_and_the_hub_answers_410(make_hub, world):
    hub = make_hub(JOB_TTL_COMPLETE_DAYS="30")
    hub.start_web()
    headers = {"Authorization": f"Bearer {world.alpha.key}"}
    user_id = str(world.alpha.accounts[0].user_id)
    job_ids = []
    for _ in range(21):
        response = requests.post(
            f"{hub.url}/api/v1/flickr/rest",
            json={"method": "flickr.test.echo", "user_id": user_id},
            headers=headers,
            timeout=15,
        )
        job_ids.append(response.json()["data"]["job_id"])
    old = timezone.now() - timedelta(days=31)
    Job.objects.filter(pk__in=job_ids[:20]).update(state="completed", finished_at=old, updated_at=old)
    Job.objects.filter(pk=job_ids[20]).update(state="completed", finished_at=timezone.now())

    runs = [purge(hub.env, "--batch-size", "3") for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    deleted = [int(re.search(r"Deleted (\d+) completed", out).group(1)) for out in outputs]
    assert sum(deleted) == 20, outputs
    assert [str(pk) for pk in Job.objects.values_list("pk", flat=True)] == [job_ids[20]]
    assert PurgedJob.objects.count() == 20

    gone = requests.get(f"{hub.url}/api/v1/flickr/jobs/{job_ids[0]}", headers=headers, timeout=5)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "ERR_JOB_EXPIRED"
    kept = requests.get(f"{hub.url}/api/v1/flickr/jobs/{job_ids[20]}", headers=headers, timeout=5)
    assert kept.status_code == 200
    theirs = requests.get(
        f"{hub.url}/api/v1/flickr/jobs/{job_ids[0]}",
        headers={"Authorization": f"Bearer {world.beta.key}"},
        timeout=5,
    )
    assert theirs.status_code == 404

    bad = purge(hub.env, "--complete-days", "-2")
    out = bad.communicate(timeout=60)[0]
    assert bad.returncode != 0 and "days must be 0" in out
