"""POST /api/v1/flickr/batch — up to 500 calls, validated together, accepted together."""

from __future__ import annotations

import json

import dramatiq
import pytest

from conftest import run_queued_jobs
from jobs import published_marks
from jobs.models import Job

pytestmark = pytest.mark.usefixtures("transactional_db")

URL = "/api/v1/flickr/batch"


def call(account, n: int, method: str = "flickr.test.echo") -> dict:
    return {"method": method, "params": {"n": str(n)}, "user_id": str(account.user_id)}


def post(client, body, key: str | None = None):
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.api().post(URL, data=json.dumps(body), content_type="application/json", **extra)


def test_a_batch_makes_one_job_per_call_in_order_and_they_all_run(world, stub_broker, stub_worker):
    alpha_accounts = world.alpha.accounts
    calls = [call(alpha_accounts[n % 2], n) for n in range(20)]
    response = post(world.alpha, {"calls": calls})
    assert response.status_code == 202, response.content
    jobs = response.json()["data"]["jobs"]
    assert len(jobs) == 20
    assert all(j["queue"] == "flickr_rest" and j["status_url"].endswith(j["job_id"]) for j in jobs)

    run_queued_jobs(stub_broker, stub_worker)
    for n, entry in enumerate(jobs):
        job = Job.objects.get(pk=entry["job_id"])
        assert job.state == "completed"
        assert job.result["flickr"]["n"] == {"_content": str(n)}, "the ids come back in the calls' order"


def test_one_bad_call_refuses_the_whole_batch_and_names_each_bad_call(world, stub_broker):
    calls = [call(world.alpha.accounts[0], n) for n in range(5)]
    calls[1]["method"] = "photos.search"
    calls[3]["user_id"] = str(world.beta.accounts[0].user_id)  # another client's account
    del calls[4]["user_id"]
    response = post(world.alpha, {"calls": calls})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "ERR_INVALID_REQUEST"
    assert "3 of 5 calls are invalid" in error["message"]
    details = " | ".join(error["details"])
    assert "calls[1].method" in details and "calls[3].user_id" in details and "calls[4].user_id" in details
    assert "calls[0]" not in details and "calls[2]" not in details
    assert Job.objects.count() == 0
    assert "flickr_rest" not in stub_broker.queues or stub_broker.queues["flickr_rest"].qsize() == 0


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"calls": []}, "1 to 500"),
        ({"calls": "all of them"}, '{"calls": [...]}'),
        ([1, 2], '{"calls": [...]}'),
        ({"calls": [{"method": "flickr.test.echo"}] * 501}, "this one has 501"),
    ],
)
def test_a_malformed_batch_is_refused(world, stub_broker, body, fragment):
    response = post(world.alpha, body)
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]
    assert Job.objects.count() == 0


def test_uploads_are_not_batched(world, stub_broker):
    calls = [{**call(world.alpha.accounts[0], 0), "target": "upload"}]
    response = post(world.alpha, {"calls": calls})
    assert response.status_code == 400
    assert "calls[0]" in " ".join(response.json()["error"]["details"])


def test_a_batch_past_the_in_flight_cap_is_refused_whole(world, stub_broker, settings):
    settings.JOB_MAX_IN_FLIGHT_PER_CLIENT = 10
    response = post(world.alpha, {"calls": [call(world.alpha.accounts[0], n) for n in range(11)]})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "ERR_QUEUE_BUSY"
    assert Job.objects.count() == 0


def test_an_idempotency_key_covers_the_whole_batch(world, stub_broker):
    body = {"calls": [call(world.alpha.accounts[0], n) for n in range(3)]}
    first = post(world.alpha, body, key="batch-7")
    again = post(world.alpha, body, key="batch-7")
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.json()["data"] == first.json()["data"]
    assert Job.objects.count() == 3
    other = post(world.alpha, {"calls": body["calls"][:2]}, key="batch-7")
    assert other.status_code == 422


def test_a_broker_outage_accepts_nothing(world, stub_broker, monkeypatch):
    def broker_down(*args, **kwargs):
        raise dramatiq.errors.BrokerConnectionError("broker down")

    monkeypatch.setattr("jobs.tasks.flickr_rest.send_with_options", broker_down)
    response = post(world.alpha, {"calls": [call(world.alpha.accounts[0], n) for n in range(3)]})
    assert response.status_code == 503
    assert Job.objects.count() == 0


def test_a_broker_lost_part_way_keeps_the_batch_for_the_sweeper(world, stub_broker, monkeypatch, settings):
    from jobs import tasks
    from jobs.services import jobs_sweep

    real = tasks.flickr_rest.send_with_options
    sent = []

    def flaky(*args, **kwargs):
        if len(sent) >= 2:
            raise dramatiq.errors.BrokerConnectionError("broker went away")
        sent.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("jobs.tasks.flickr_rest.send_with_options", flaky)
    response = post(world.alpha, {"calls": [call(world.alpha.accounts[0], n) for n in range(5)]})
    assert response.status_code == 202
    published_marks.flush()
    assert Job.objects.filter(published_at__isnull=True).count() == 3

    monkeypatch.setattr("jobs.tasks.flickr_rest.send_with_options", real)
    settings.JOB_REPUBLISH_AFTER_SECONDS = 0
    assert jobs_sweep()["queued"] == 3
