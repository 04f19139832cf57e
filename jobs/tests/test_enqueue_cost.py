"""What an enqueue costs the database, and that the cheaper path keeps its promises: a job
whose message went out is recorded as published (so a long queue is not published twice), and
one a worker has already taken up is left for the sweeper as before."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import published_marks
from jobs.models import Job, JobState
from jobs.services import jobs_sweep

URL = "/api/v1/flickr/rest"


def body(client, **params):
    return {"method": "flickr.test.echo", "params": params, "user_id": str(client.accounts[0].user_id)}


def test_an_enqueue_makes_four_queries(world, stub_broker, django_assert_max_num_queries):
    api = world.alpha.api()
    assert api.post(URL, body(world.alpha), format="json").status_code == 202  # last_used_at set
    # the API key, the account, the in-flight cap, the INSERT: nothing after the broker's confirm
    with django_assert_max_num_queries(4):
        response = api.post(URL, body(world.alpha), format="json")
    assert response.status_code == 202
    assert stub_broker.queues["flickr_rest"].qsize() == 2


def test_the_in_flight_cap_counts_only_to_the_cap_and_names_the_count(world, stub_broker, settings):
    settings.JOB_MAX_IN_FLIGHT_PER_CLIENT = 3
    api = world.alpha.api()
    for _ in range(3):
        assert api.post(URL, body(world.alpha), format="json").status_code == 202
    refused = api.post(URL, body(world.alpha), format="json")
    assert refused.status_code == 429
    assert "You have 3 unfinished jobs" in refused.json()["error"]["message"]
    assert world.beta.api().post(URL, body(world.beta), format="json").status_code == 202


def test_the_cap_is_looked_at_about_twice_per_half_of_it_and_still_holds_exactly(
    world, stub_broker, settings, django_assert_max_num_queries
):
    settings.JOB_MAX_IN_FLIGHT_PER_CLIENT = 10
    api = world.alpha.api()
    statuses = [api.post(URL, body(world.alpha), format="json").status_code for _ in range(10)]
    assert statuses == [202] * 10
    # With at most half the cap unfinished, the next enqueues read nothing for the cap: the
    # API key, the account and the INSERT.
    settings.JOB_MAX_IN_FLIGHT_PER_CLIENT = 20
    api.post(URL, body(world.alpha), format="json")  # looks: 11 unfinished, more than half
    Job.objects.filter(client=world.alpha.model).update(state=JobState.COMPLETED)
    api.post(URL, body(world.alpha), format="json")  # looks: 1 unfinished, room for 9 more
    with django_assert_max_num_queries(3):
        assert api.post(URL, body(world.alpha), format="json").status_code == 202
    settings.JOB_MAX_IN_FLIGHT_PER_CLIENT = 10
    for _ in range(8):  # 2 unfinished, then 8 more
        assert api.post(URL, body(world.alpha), format="json").status_code == 202
    refused = api.post(URL, body(world.alpha), format="json")
    assert refused.status_code == 429, "one process never passes the cap"
    assert "You have 10 unfinished jobs" in refused.json()["error"]["message"]


def test_published_jobs_are_recorded_so_a_long_queue_is_not_published_twice(world, stub_broker):
    job_id = world.alpha.api().post(URL, body(world.alpha), format="json").json()["data"]["job_id"]
    assert published_marks.flush() == 1
    Job.objects.filter(pk=job_id).update(created_at=timezone.now() - timedelta(hours=1))
    assert jobs_sweep()["queued"] == 0
    assert stub_broker.queues["flickr_rest"].qsize() == 1


def test_a_job_a_worker_took_up_before_the_record_is_left_for_the_sweeper(world, stub_broker):
    job_id = world.alpha.api().post(URL, body(world.alpha), format="json").json()["data"]["job_id"]
    # A worker claims it and puts it back to wait in the database, all before the marks are
    # written: the wait must stay visible to the sweeper (published_at NULL).
    run = Job.objects.claim(job_id, lease_seconds=60, takeover=False)
    assert Job.objects.postpone(run, reason="quota", at=timezone.now())
    assert published_marks.flush() == 0
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.published_at) == (JobState.RETRYING, None)
    assert jobs_sweep()["retrying"] == 1


def test_a_process_that_dies_before_the_record_costs_at_most_a_second_message(world, stub_broker, settings):
    job_id = world.alpha.api().post(URL, body(world.alpha), format="json").json()["data"]["job_id"]
    published_marks.discard()  # the process died with the mark unwritten
    settings.JOB_REPUBLISH_AFTER_SECONDS = 0
    assert jobs_sweep()["queued"] == 1
    assert stub_broker.queues["flickr_rest"].qsize() == 2  # the claim runs it once (test_claim_and_sweep)
    assert Job.objects.filter(pk=job_id, published_at__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_the_web_process_records_published_jobs_within_a_second(world, stub_broker, monkeypatch):
    monkeypatch.setattr(published_marks.marks, "background", True)
    job_id = world.alpha.api().post(URL, body(world.alpha), format="json").json()["data"]["job_id"]
    deadline = time.monotonic() + 3
    while not Job.objects.filter(pk=job_id, published_at__isnull=False).exists():
        assert time.monotonic() < deadline, "not recorded by the marks thread"
        time.sleep(0.05)


def test_a_key_with_a_free_quota_slot_is_asked_about_once_per_look_and_a_short_key_parks(
    world, stub_broker, settings, monkeypatch
):
    from flickr import ratelimit
    from jobs import services

    settings.FLICKR_FAIR_QUEUEING = True
    asked: list[int] = []
    real = ratelimit.next_slot_seconds
    monkeypatch.setattr(ratelimit, "next_slot_seconds", lambda app_id: asked.append(app_id) or real(app_id))
    monkeypatch.setattr(services, "PARKS_LOOK_SECONDS", 60.0)  # however slow this machine is
    api = world.alpha.api()
    for _ in range(5):
        assert api.post(URL, body(world.alpha), format="json").status_code == 202
    assert len(asked) == 1, "enqueues within PARKS_LOOK_SECONDS ask once"
    assert stub_broker.queues["flickr_rest"].qsize() == 5

    # The key runs short: once the look is over, enqueues ask again and park in the database.
    settings.FLICKR_QUOTA_PER_HOUR = 1
    settings.FLICKR_QUOTA_BURST = 0
    ratelimit.reserve(world.alpha.accounts[0].app_id)
    ratelimit.reserve(world.alpha.accounts[0].app_id)
    monkeypatch.setattr(services, "PARKS_LOOK_SECONDS", 0.0)
    parked = [api.post(URL, body(world.alpha), format="json").json()["data"]["job_id"] for _ in range(2)]
    assert len(asked) == 3
    assert stub_broker.queues["flickr_rest"].qsize() == 5, "parked jobs send no message"
    assert Job.objects.filter(pk__in=parked, quota_parked_at__isnull=False).count() == 2


def test_enqueue_serializers_share_their_fields_per_thread_but_not_their_requests(world) -> None:
    """An enqueue's body is checked with fields bound once per thread (no per-request deep copy):
    one request's values, errors or context never reach the next, nor another thread."""
    import threading

    from jobs.serializers import EnqueueInput

    uid = str(world.alpha.accounts[0].user_id)
    bad = EnqueueInput(data={"user_id": uid, "method": "nope", "params": [1]}, context={"multipart": False})
    assert not bad.is_valid()
    assert set(bad.errors) == {"method", "params"}
    good = EnqueueInput(data={"user_id": uid, "method": "flickr.test.echo"}, context={"multipart": False})
    assert good.is_valid(), good.errors
    assert good.validated_data["method"] == "flickr.test.echo"
    assert good.fields is bad.fields  # the same thread: one set of fields
    upload = EnqueueInput(data={"user_id": uid, "target": "upload"}, context={"multipart": True})
    assert not upload.is_valid()
    assert "photo is required" in str(upload.errors)  # this request's context, not the template's

    other: dict = {}

    def in_another_thread() -> None:
        serializer = EnqueueInput(data={"user_id": uid, "method": "x"}, context={"multipart": False})
        other["valid"] = serializer.is_valid()
        other["fields"] = serializer.fields

    thread = threading.Thread(target=in_another_thread)
    thread.start()
    thread.join()
    assert other["valid"] is False
    assert other["fields"] is not good.fields
    assert all(field.parent is not bad for field in good.fields.values())  # no request body kept
