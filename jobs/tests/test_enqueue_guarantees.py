"""What an integrator can count on at enqueue: Idempotency-Key, the in-flight cap, ?wait."""

from __future__ import annotations

import io
import json

import dramatiq
import pytest

from conftest import run_queued_jobs
from flickr.fake.testing import tiny_jpeg, tiny_png
from jobs.models import IdempotencyKey, Job

pytestmark = pytest.mark.usefixtures("transactional_db")

URL = "/api/v1/flickr/rest"


def body(client, method="flickr.test.echo", **params) -> dict:
    return {"method": method, "params": params, "user_id": str(client.accounts[0].user_id)}


def post(client, data: dict, key: str | None = None, query: str = ""):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.api().post(URL + query, data=json.dumps(data), content_type="application/json", **headers)


# ------------------------------------------------------------------ Idempotency-Key


def test_the_same_key_and_body_answer_the_same_job(world, stub_broker):
    first = post(world.alpha, body(world.alpha, n="1"), key="order-17")
    again = post(world.alpha, body(world.alpha, n="1"), key="order-17")
    assert first.status_code == again.status_code == 202
    assert again.json()["data"] == first.json()["data"]
    assert again["Idempotent-Replayed"] == "true"
    assert Job.objects.count() == 1
    assert stub_broker.queues["flickr_rest"].qsize() == 1, "one message, not two"


def test_the_same_key_with_another_body_is_refused_with_422(world, stub_broker):
    post(world.alpha, body(world.alpha, n="1"), key="order-17")
    response = post(world.alpha, body(world.alpha, n="2"), key="order-17")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "ERR_IDEMPOTENCY_KEY_REUSED"
    assert Job.objects.count() == 1


def test_a_key_still_being_accepted_answers_409(world, stub_broker):
    # The first request with this key has claimed it and not finished yet.
    fields = body(world.alpha, n="1")
    from jobs import idempotency

    idempotency.claim(world.alpha.model, "order-17", idempotency.fingerprint(_validated(fields)))
    response = post(world.alpha, fields, key="order-17")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "ERR_IDEMPOTENCY_IN_PROGRESS"
    assert response["Retry-After"] == "1"
    assert Job.objects.count() == 0


def _validated(fields: dict) -> dict:
    from jobs.serializers import EnqueueInput

    serializer = EnqueueInput(data=fields, context={"multipart": False})
    serializer.is_valid(raise_exception=True)
    return {k: v for k, v in serializer.validated_data.items() if k != "photo"}


def test_keys_belong_to_one_client(world, stub_broker):
    post(world.alpha, body(world.alpha, n="1"), key="shared-name")
    response = post(world.beta, body(world.beta, n="other"), key="shared-name")
    assert response.status_code == 202
    assert Job.objects.count() == 2


def test_a_refused_request_frees_its_key_for_the_corrected_one(world, stub_broker):
    wrong = {**body(world.alpha), "user_id": "not-a-user"}
    assert post(world.alpha, wrong, key="retry-me").status_code == 404
    assert post(world.alpha, body(world.alpha), key="retry-me").status_code == 202
    assert IdempotencyKey.objects.get(key="retry-me").job_id is not None


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "naïve"])
def test_a_malformed_key_is_refused(world, stub_broker, key):
    response = post(world.alpha, body(world.alpha), key=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["message"]
    assert Job.objects.count() == 0


def test_an_upload_with_a_key_is_the_same_job_only_for_the_same_file(world, stub_broker):
    def upload(data: bytes):
        photo = io.BytesIO(data)
        photo.name = "a.jpg"
        fields = {"user_id": str(world.alpha.accounts[0].user_id), "target": "upload", "photo": photo}
        return world.alpha.api().post(URL, data=fields, format="multipart", HTTP_IDEMPOTENCY_KEY="upload-1")

    first = upload(tiny_jpeg())
    assert upload(tiny_jpeg()).json()["data"]["job_id"] == first.json()["data"]["job_id"]
    assert upload(tiny_png()).status_code == 422


# ------------------------------------------------------------------ in-flight cap


def test_a_client_at_its_in_flight_cap_gets_429_and_others_do_not(world, stub_broker, settings):
    settings.JOB_MAX_IN_FLIGHT_PER_CLIENT = 2
    assert post(world.alpha, body(world.alpha)).status_code == 202
    assert post(world.alpha, body(world.alpha)).status_code == 202
    busy = post(world.alpha, body(world.alpha))
    assert busy.status_code == 429
    assert busy.json()["error"]["code"] == "ERR_QUEUE_BUSY"
    assert int(busy["Retry-After"]) >= 1
    assert Job.objects.filter(client=world.alpha.model).count() == 2
    assert post(world.beta, body(world.beta)).status_code == 202, "the cap is per client"

    worker = dramatiq.Worker(stub_broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        run_queued_jobs(stub_broker, worker)
    finally:
        worker.stop()
    assert post(world.alpha, body(world.alpha)).status_code == 202, "finished jobs free the cap"


# ------------------------------------------------------------------ ?wait


def test_enqueue_with_wait_answers_the_finished_job(world, stub_broker, stub_worker):
    response = post(world.alpha, body(world.alpha, greeting="hi"), query="?wait=10")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["state"] == "completed"
    assert data["returnvalue"]["flickr"]["greeting"] == {"_content": "hi"}
    assert data["job_id"] == data["id"] and data["status_url"].endswith(data["id"])


def test_a_wait_that_runs_out_answers_202_with_the_status_url(world, stub_broker, stub_worker):
    world.sandbox.app.faults.add("latency", method="flickr.test.echo", count=1, ms=1500)
    response = post(world.alpha, body(world.alpha), query="?wait=0.2")
    assert response.status_code == 202
    job_id = response.json()["data"]["job_id"]
    assert response["Location"].endswith(job_id)

    slow = world.alpha.api().get(f"/api/v1/flickr/jobs/{job_id}?wait=0.1")
    assert slow.status_code == 202 and slow.json()["data"]["state"] in ("queued", "running")
    done = world.alpha.api().get(f"/api/v1/flickr/jobs/{job_id}?wait=10")
    assert done.status_code == 200 and done.json()["data"]["state"] == "completed"


def test_the_status_call_waits_too(world, stub_broker, stub_worker):
    job_id = post(world.alpha, body(world.alpha)).json()["data"]["job_id"]
    response = world.alpha.api().post(
        "/api/v1/flickr/jobs/status?wait=10",
        data=json.dumps({"job_id": job_id, "user_id": str(world.alpha.accounts[0].user_id)}),
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["data"]["state"] == "completed"


@pytest.mark.parametrize("wait", ["abc", "-1", "nan", "inf"])
def test_a_bad_wait_is_refused_before_anything_is_queued(world, stub_broker, wait):
    response = post(world.alpha, body(world.alpha), query=f"?wait={wait}")
    assert response.status_code == 400
    assert "wait must be" in response.json()["error"]["message"]
    assert Job.objects.count() == 0


def test_a_long_wait_is_capped(world, stub_broker, settings):
    settings.API_MAX_WAIT_SECONDS = 0.3
    # No worker runs, so the job cannot end: the answer comes when the cap runs out.
    response = post(world.alpha, body(world.alpha), query="?wait=1000")
    assert response.status_code == 202
