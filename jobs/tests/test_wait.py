"""`?wait=`: the answer comes when the job ends, not at the next look at the database; a
lost word only delays it; and a read already in the cache is answered without a worker."""

from __future__ import annotations

import threading
import time

import pytest
from django.utils import timezone

from conftest import run_queued_jobs
from jobs.models import Job, JobState
from jobs.models_callbacks import CallbackDelivery

pytestmark = pytest.mark.usefixtures("transactional_db")

URL = "/api/v1/flickr/rest"


def body(client, method="flickr.test.echo", **params):
    return {"method": method, "params": params, "user_id": str(client.accounts[0].user_id)}


def timed_post(client, data, query=""):
    started = time.monotonic()
    response = client.api().post(f"{URL}{query}", data, format="json")
    return response, time.monotonic() - started


def test_a_wait_is_answered_when_the_job_ends_not_at_the_next_look(world, stub_broker, stub_worker, settings):
    settings.API_WAIT_POLL_MS = 5000
    response, took = timed_post(world.alpha, body(world.alpha, greeting="hi"), "?wait=10")
    assert response.status_code == 200
    assert response.json()["data"]["state"] == "completed"
    assert took < 2.0, f"answered after {took:.2f}s: the wait slept until its next look"


def test_a_status_wait_is_woken_too(world, stub_broker, stub_worker, settings):
    settings.API_WAIT_POLL_MS = 5000
    stub_worker.pause()
    job_id = world.alpha.api().post(URL, body(world.alpha), format="json").json()["data"]["job_id"]
    threading.Timer(0.3, stub_worker.resume).start()
    started = time.monotonic()
    response = world.alpha.api().get(f"/api/v1/flickr/jobs/{job_id}?wait=10")
    assert response.status_code == 200 and response.json()["data"]["state"] == "completed"
    assert time.monotonic() - started < 2.0


def test_an_end_nobody_announced_is_seen_at_the_next_look(world, stub_broker, settings):
    settings.API_WAIT_POLL_MS = 200
    job_id = world.alpha.api().post(URL, body(world.alpha), format="json").json()["data"]["job_id"]

    def end_it_quietly():  # as if the announcement were lost
        Job.objects.filter(pk=job_id).update(
            state=JobState.COMPLETED, result={"from_cache": False, "flickr": {}}, finished_at=timezone.now()
        )

    threading.Timer(0.3, end_it_quietly).start()
    started = time.monotonic()
    response = world.alpha.api().get(f"/api/v1/flickr/jobs/{job_id}?wait=10")
    assert response.status_code == 200 and response.json()["data"]["state"] == "completed"
    assert time.monotonic() - started < 2.0


def test_with_redis_down_a_wait_still_answers(world, stub_broker, stub_worker, settings, redis_down):
    settings.API_WAIT_POLL_MS = 300
    response, took = timed_post(world.alpha, body(world.alpha, greeting="hi"), "?wait=10")
    assert response.status_code == 200
    assert response.json()["data"]["returnvalue"]["flickr"]["greeting"]["_content"] == "hi"
    assert took < 5.0


# ------------------------------------------------------------------ answered from the cache


def search(client, **extra):
    return {**body(client, method="flickr.photos.search", text="harbour"), **extra}


def test_a_waited_read_in_the_cache_is_answered_without_a_message(world, stub_broker, stub_worker):
    first = world.alpha.api().post(f"{URL}?wait=10", search(world.alpha), format="json")
    assert first.status_code == 200 and first.json()["data"]["returnvalue"]["from_cache"] is False
    run_queued_jobs(stub_broker, stub_worker)
    calls = world.sandbox.app.counters.snapshot()

    second = world.alpha.api().post(f"{URL}?wait=10", search(world.alpha), format="json")

    assert second.status_code == 200
    data = second.json()["data"]
    assert data["state"] == "completed" and data["attempts"] == 1
    assert data["returnvalue"]["from_cache"] is True
    assert data["returnvalue"]["flickr"] == first.json()["data"]["returnvalue"]["flickr"]
    assert 0 < data["returnvalue"]["cache_ttl_seconds"] <= 300
    assert stub_broker.queues["flickr_rest"].qsize() == 0, "no message for a job already answered"
    assert world.sandbox.app.counters.snapshot() == calls
    job = Job.objects.get(pk=data["job_id"])
    assert (job.state, job.from_cache, job.finished_at is not None) == (JobState.COMPLETED, True, True)


def test_a_hit_answered_by_the_web_reads_like_one_a_worker_served(
    world, stub_broker, stub_worker, settings, monkeypatch
):
    settings.CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    # The deliveries are written, not sent: nothing listens at that address, and a delivery
    # retrying would outlive this test (sending is test_callbacks.py's business).
    monkeypatch.setattr("jobs.callbacks._publish_or_leave", lambda delivery, **kw: None)
    hook = {"callback_url": "http://127.0.0.1:9/hook", "meta": {"m": 1}}
    world.alpha.api().post(f"{URL}?wait=10", search(world.alpha), format="json")
    stub_worker.pause()
    queued = world.alpha.api().post(URL, search(world.alpha, **hook), format="json").json()["data"]
    stub_worker.resume()
    run_queued_jobs(stub_broker, stub_worker)
    by_worker = world.alpha.api().get(f"/api/v1/flickr/jobs/{queued['job_id']}").json()["data"]
    by_web = (
        world.alpha.api().post(f"{URL}?wait=10", search(world.alpha, **hook), format="json").json()["data"]
    )

    def shape(status):
        volatile = {"id", "job_id", "created_at", "updated_at", "finished_at", "status_url", "queue", "state"}
        out = {k: v for k, v in status.items() if k not in volatile}
        out["returnvalue"] = {k: v for k, v in status["returnvalue"].items() if k != "cache_ttl_seconds"}
        return out

    assert by_worker["returnvalue"]["from_cache"] is True
    assert shape(by_web) == shape(by_worker)
    assert by_web["state"] == by_worker["state"] == "completed"
    delivery = CallbackDelivery.objects.get(job_id=by_web["job_id"])
    assert '"from_cache":true' in delivery.body


@pytest.mark.parametrize(
    "extra",
    [{"cache": False}, {"paginate": True}],
    ids=["cache-false", "paginate"],
)
def test_a_waited_read_that_wants_no_cached_answer_goes_to_a_worker(world, stub_broker, extra):
    world.alpha.api().post(URL, search(world.alpha), format="json")
    run_queued = stub_broker.queues["flickr_rest"].qsize()
    response = world.alpha.api().post(f"{URL}?wait=0.05", search(world.alpha, **extra), format="json")
    assert response.status_code == 202
    assert stub_broker.queues["flickr_rest"].qsize() == run_queued + 1


def test_a_read_without_wait_still_goes_through_the_queue(world, stub_broker, stub_worker):
    world.alpha.api().post(f"{URL}?wait=10", search(world.alpha), format="json")
    stub_worker.pause()
    response = world.alpha.api().post(URL, search(world.alpha), format="json")
    assert response.status_code == 202 and response.json()["data"]["state"] == "queued"
    assert stub_broker.queues["flickr_rest"].qsize() == 1
    stub_worker.resume()


def test_an_account_needing_relink_is_not_answered_from_the_cache(world, stub_broker, stub_worker):
    from accounts.services import account_mark_needs_relink

    world.alpha.api().post(f"{URL}?wait=10", search(world.alpha), format="json")
    account_mark_needs_relink(account_id=world.alpha.accounts[0].pk, reason="revoked on Flickr")
    response = world.alpha.api().post(f"{URL}?wait=10", search(world.alpha), format="json")
    assert response.status_code == 200
    assert response.json()["data"]["error"]["code"] == "ERR_FLICKR_RELINK_REQUIRED"


# ------------------------------------------------------------------ who is told of an end


def test_a_job_is_marked_awaited_by_its_enqueue_wait_or_a_later_status_wait(world, stub_broker, settings):
    settings.API_WAIT_POLL_MS = 50
    quiet = world.alpha.api().post(URL, body(world.alpha), format="json").json()["data"]["job_id"]
    assert Job.objects.get(pk=quiet).awaited is False  # nobody waits: its end is not announced
    waited = world.alpha.api().post(f"{URL}?wait=0.1", body(world.alpha), format="json").json()["data"]
    assert Job.objects.get(pk=waited["job_id"]).awaited is True
    status = world.alpha.api().get(f"/api/v1/flickr/jobs/{quiet}?wait=0.1")
    assert status.status_code == 202
    assert Job.objects.get(pk=quiet).awaited is True
