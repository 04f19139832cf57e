"""Spending Flickr's quota well and surviving its bad days: the response cache, coalescing of
identical calls, the shared quota limiter, the circuit breaker, and the failed-job archive.
Upstream calls are counted by the sandbox, so "no call was made" is observed, not assumed."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from unittest import mock

import dramatiq
import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.models import AccountStatus
from conftest import run_queued_jobs
from flickr import breaker
from jobs import runner
from jobs.models import FailedJob, Job, JobState
from jobs.services import job_publish

pytestmark = pytest.mark.usefixtures("transactional_db")

URL = "/api/v1/flickr/rest"


def enqueue(client, account, method="flickr.test.echo", params=None, **extra) -> str:
    body = {"method": method, "params": params or {}, "user_id": str(account.user_id), **extra}
    response = client.api().post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()["data"]["job_id"]


def status(client, job_id) -> dict:
    return client.api().get(f"/api/v1/flickr/jobs/{job_id}").json()["data"]


def upstream(world, method: str) -> int:
    return world.sandbox.app.counters.snapshot()["by_method"].get(method, 0)


# ------------------------------------------------------------------ cache


def test_a_repeated_read_is_answered_from_the_cache_without_calling_flickr(world, stub_broker, stub_worker):
    account = world.alpha.accounts[0]
    params = {"user_id": account.nsid}
    first = enqueue(world.alpha, account, "flickr.people.getInfo", params)
    run_queued_jobs(stub_broker, stub_worker)
    second = enqueue(world.alpha, account, "flickr.people.getInfo", params)
    run_queued_jobs(stub_broker, stub_worker)

    assert upstream(world, "flickr.people.getInfo") == 1
    fresh, cached = status(world.alpha, first)["returnvalue"], status(world.alpha, second)["returnvalue"]
    assert fresh["from_cache"] is False
    assert cached["from_cache"] is True
    assert 0 < cached["cache_ttl_seconds"] <= 300
    assert cached["flickr"] == fresh["flickr"]
    assert cached["observability"] == {"ok": True, "cached": True}


def test_the_cache_is_kept_per_account(world, stub_broker, stub_worker):
    nsid = world.alpha.accounts[0].nsid
    for account in world.alpha.accounts:
        enqueue(world.alpha, account, "flickr.people.getInfo", {"user_id": nsid})
        run_queued_jobs(stub_broker, stub_worker)
    assert upstream(world, "flickr.people.getInfo") == 2


def test_cache_false_asks_flickr_again_and_max_age_accepts_an_older_answer(world, stub_broker, stub_worker):
    account = world.alpha.accounts[0]
    params = {"user_id": account.nsid}
    enqueue(world.alpha, account, "flickr.people.getInfo", params)
    run_queued_jobs(stub_broker, stub_worker)
    fresh = enqueue(world.alpha, account, "flickr.people.getInfo", params, cache=False)
    run_queued_jobs(stub_broker, stub_worker)
    assert status(world.alpha, fresh)["returnvalue"]["from_cache"] is False
    assert upstream(world, "flickr.people.getInfo") == 2

    old_enough = enqueue(world.alpha, account, "flickr.people.getInfo", params, max_age=3600)
    run_queued_jobs(stub_broker, stub_worker)
    assert status(world.alpha, old_enough)["returnvalue"]["from_cache"] is True
    assert upstream(world, "flickr.people.getInfo") == 2


def test_an_answer_older_than_max_age_is_not_used(world, stub_broker, stub_worker):
    account = world.alpha.accounts[0]
    params = {"user_id": account.nsid}
    enqueue(world.alpha, account, "flickr.people.getInfo", params)
    run_queued_jobs(stub_broker, stub_worker)
    with mock.patch("flickr.response_cache.time.time", return_value=time.time() + 120):
        later = enqueue(world.alpha, account, "flickr.people.getInfo", params, max_age=60)
        run_queued_jobs(stub_broker, stub_worker)
    assert status(world.alpha, later)["returnvalue"]["from_cache"] is False
    assert upstream(world, "flickr.people.getInfo") == 2


def test_writes_and_token_checks_are_never_cached(world, stub_broker, stub_worker):
    account = world.alpha.accounts[0]
    photo_id = next(p.id for p in world.sandbox.app.state.library.photos.values() if p.owner == account.nsid)
    for _ in range(2):
        enqueue(world.alpha, account, "flickr.photos.addTags", {"photo_id": photo_id, "tags": "again"})
        enqueue(world.alpha, account, "flickr.test.login")
        run_queued_jobs(stub_broker, stub_worker)
    assert upstream(world, "flickr.photos.addTags") == 2
    assert upstream(world, "flickr.test.login") == 2


# ------------------------------------------------------------------ coalescing


@pytest.mark.parametrize("cache_enabled", [True, False])
def test_a_hundred_identical_reads_in_flight_make_one_upstream_call(
    world, stub_broker, settings, cache_enabled
):
    settings.CACHE_ENABLED = cache_enabled
    account = world.alpha.accounts[0]
    # All 100 are queued before a worker starts; the first call is slow, so the other 99 are
    # picked up while it is in flight.
    world.sandbox.app.faults.add("latency", method="flickr.people.getInfo", count=1, ms=1000)
    ids = [
        enqueue(world.alpha, account, "flickr.people.getInfo", {"user_id": account.nsid}) for _ in range(100)
    ]
    worker = dramatiq.Worker(stub_broker, worker_threads=8, worker_timeout=50)
    worker.start()
    try:
        run_queued_jobs(stub_broker, worker)
    finally:
        worker.stop()

    assert upstream(world, "flickr.people.getInfo") == 1
    results = [Job.objects.get(pk=i) for i in ids]
    assert [j.state for j in results] == [JobState.COMPLETED] * 100
    assert sum(1 for j in results if j.from_cache) == 99
    assert len({json.dumps(j.result["flickr"], sort_keys=True) for j in results}) == 1
    assert all(j.attempts <= 1 for j in results), "waiting for another job's call is not an attempt"


def test_an_identical_call_asked_for_after_the_answer_came_is_made_again(
    world, stub_broker, stub_worker, settings
):
    settings.CACHE_ENABLED = False
    account = world.alpha.accounts[0]
    for _ in range(2):
        enqueue(world.alpha, account, "flickr.people.getInfo", {"user_id": account.nsid})
        run_queued_jobs(stub_broker, stub_worker)
    assert upstream(world, "flickr.people.getInfo") == 2


def test_different_arguments_are_not_coalesced(world, stub_broker, stub_worker):
    account = world.alpha.accounts[0]
    world.sandbox.app.faults.add("latency", method="flickr.photos.search", count=1, ms=500)
    for tag in ("harbour", "fog", "night"):
        enqueue(world.alpha, account, "flickr.photos.search", {"tags": tag})
    run_queued_jobs(stub_broker, stub_worker)
    assert upstream(world, "flickr.photos.search") == 3


# ------------------------------------------------------------------ quota


@pytest.mark.parametrize("fair", [True, False], ids=["fair", "fifo"])
def test_without_budget_a_job_waits_for_its_slot_instead_of_failing(
    world, stub_broker, stub_worker, settings, fair
):
    settings.FLICKR_FAIR_QUEUEING = fair
    settings.FLICKR_QUOTA_PER_HOUR = 1
    settings.FLICKR_QUOTA_BURST = 0
    account = world.alpha.accounts[0]
    first = enqueue(world.alpha, account)
    second = enqueue(world.alpha, account)
    run_queued_jobs(stub_broker, stub_worker)

    # First in, first out, the two messages may reach two worker threads at once, and either
    # may take the one slot; fair queueing parks the second at enqueue.
    if not fair and status(world.alpha, second)["state"] == "completed":
        first, second = second, first
    assert status(world.alpha, first)["state"] == "completed"
    waiting = status(world.alpha, second)
    # Fair queueing parks a job at enqueue when its key is already short (then it is still
    # `queued`: it never ran), or when a worker finds no slot for it.
    assert waiting["state"] in (("queued", "retrying") if fair else ("retrying",))
    assert waiting["waiting_for"] == "quota"
    assert waiting["attempts"] == 0
    assert "error" not in waiting
    assert upstream(world, "flickr.test.echo") == 1
    job = Job.objects.get(pk=second)
    if fair:  # parked in the database, for the dispatcher to release in its turn
        assert job.next_attempt_at is None and job.quota_parked_at is not None
    else:  # holding the key's next slot, an hour away
        assert 3500 < (job.next_attempt_at - job.updated_at).total_seconds() <= 3600


@pytest.mark.parametrize("fair", [True, False], ids=["fair", "fifo"])
def test_calls_are_spread_evenly_at_the_quotas_pace(world, stub_broker, stub_worker, settings, fair):
    settings.FLICKR_FAIR_QUEUEING = fair
    settings.FLICKR_QUOTA_PER_HOUR = 36_000  # one call every 0.1 s
    settings.FLICKR_QUOTA_BURST = 0
    account = world.alpha.accounts[0]
    ids = [enqueue(world.alpha, account, params={"n": str(n)}) for n in range(8)]
    run_queued_jobs(stub_broker, stub_worker)

    assert [status(world.alpha, i)["state"] for i in ids] == ["completed"] * 8
    times = sorted(c["ts"] for c in world.sandbox.app.counters.calls() if c["method"] == "flickr.test.echo")
    assert len(times) == 8
    # Each call goes at or after its slot (0.1 s apart), a few ms late at most; so any four
    # consecutive calls span about 0.3 s, never a burst.
    spans = [times[i + 3] - times[i] for i in range(len(times) - 3)]
    assert min(spans) > 0.2, spans
    assert times[-1] - times[0] > 0.6
    assert all(Job.objects.get(pk=i).attempts == 1 for i in ids)


# ------------------------------------------------------------------ circuit breaker


def test_the_circuit_opens_after_consecutive_failures_and_a_probe_closes_it(settings, world):
    settings.BREAKER_FAILURE_THRESHOLD = 3
    settings.BREAKER_COOLDOWN_SECONDS = 30
    app_id = world.alpha.accounts[0].app_id
    clock = time.time()
    with mock.patch("flickr.breaker.time.time", side_effect=lambda: clock):
        for _ in range(2):
            breaker.record_failure(app_id)
        assert breaker.check(app_id, job_id="a").allowed, "two failures in a row do not open it"
        breaker.record_failure(app_id)
        verdict = breaker.check(app_id, job_id="a")
        assert not verdict.allowed and 29 < verdict.wait_seconds <= 30
        assert breaker.state(app_id) == breaker.State.OPEN

    clock += 31
    with mock.patch("flickr.breaker.time.time", side_effect=lambda: clock):
        assert breaker.state(app_id) == breaker.State.HALF_OPEN
        probe = breaker.check(app_id, job_id="probe")
        assert probe.allowed and probe.probe
        assert not breaker.check(app_id, job_id="other").allowed, "one probe at a time"
        breaker.record_success(app_id)
        assert breaker.state(app_id) == breaker.State.CLOSED
        assert breaker.check(app_id, job_id="other").allowed


def test_a_process_that_saw_the_circuit_closed_asks_again_soon_or_at_its_own_failure(
    settings, world, monkeypatch
):
    settings.BREAKER_FAILURE_THRESHOLD = 1
    app_id = world.alpha.accounts[0].app_id
    clock = [1000.0]
    monkeypatch.setattr(breaker.time, "monotonic", lambda: clock[0])
    assert breaker.check(app_id, job_id="a").allowed
    # Another process opens the circuit (its failure reaches the shared state, not this process).
    _failures, open_key, _probe = breaker._keys(app_id)
    cache.set(open_key, time.time() + 30)
    assert breaker.check(app_id, job_id="b").allowed, "within CLOSED_LOOK_SECONDS: not asked again"
    clock[0] += breaker.CLOSED_LOOK_SECONDS
    assert not breaker.check(app_id, job_id="c").allowed, "asked again CLOSED_LOOK_SECONDS later"

    breaker.reset(app_id)
    assert breaker.check(app_id, job_id="d").allowed
    breaker.record_failure(app_id)  # this process's own failure opens it: seen at once
    assert not breaker.check(app_id, job_id="e").allowed


def test_failures_separated_by_successes_never_open_the_circuit(settings, world):
    # Successes through a closed circuit skip the reset while nothing failed since the last
    # one; after a failure the next success resets at once, so only a run counts.
    settings.BREAKER_FAILURE_THRESHOLD = 2
    app_id = world.alpha.accounts[0].app_id
    for _ in range(5):
        breaker.record_success(app_id, through_closed=True)
        breaker.record_failure(app_id)
        breaker.record_success(app_id, through_closed=True)
        breaker.record_success(app_id, through_closed=True)
    assert breaker.state(app_id) == breaker.State.CLOSED
    breaker.record_failure(app_id)
    breaker.record_failure(app_id)
    assert breaker.state(app_id) == breaker.State.OPEN, "two in a row do"


def test_a_failed_probe_opens_the_circuit_again(settings, world):
    settings.BREAKER_FAILURE_THRESHOLD = 1
    settings.BREAKER_COOLDOWN_SECONDS = 10
    app_id = world.alpha.accounts[0].app_id
    clock = time.time()
    with mock.patch("flickr.breaker.time.time", side_effect=lambda: clock):
        breaker.record_failure(app_id)
    clock += 11
    with mock.patch("flickr.breaker.time.time", side_effect=lambda: clock):
        assert breaker.check(app_id, job_id="probe").probe
        breaker.record_failure(app_id)
        assert breaker.state(app_id) == breaker.State.OPEN
        assert not breaker.check(app_id, job_id="next").allowed


def test_jobs_wait_while_the_circuit_is_open_and_run_after_the_probe(
    world, stub_broker, stub_worker, settings
):
    settings.BREAKER_FAILURE_THRESHOLD = 2
    settings.BREAKER_COOLDOWN_SECONDS = 1
    settings.JOB_RETRY_ATTEMPTS = 5
    world.sandbox.app.faults.add("http_error", method="flickr.test.echo", count=2, status=503)
    account = world.alpha.accounts[0]
    job_id = enqueue(world.alpha, account)
    started = time.monotonic()
    run_queued_jobs(stub_broker, stub_worker)

    data = status(world.alpha, job_id)
    assert data["state"] == "completed"
    assert data["attempts"] == 3, "two failed calls and the probe; the waits cost no attempt"
    assert upstream(world, "flickr.test.echo") == 3
    assert time.monotonic() - started >= 1.0, "the job waited out the cool-down"
    assert breaker.state(account.app_id) == breaker.State.CLOSED


def test_a_job_that_waited_for_its_quota_slot_asks_the_circuit_again_before_calling(
    world, stub_broker, stub_worker, settings, monkeypatch, caplog
):
    # The dispatcher gave the job a slot half a second ahead. While it waits for it, another
    # process's third failure opens the circuit: the job must not call into the open circuit.
    settings.BREAKER_COOLDOWN_SECONDS = 1
    account = world.alpha.accounts[0]
    job = Job.objects.create(
        client=world.alpha.model, account=account, method="flickr.test.echo", params={}, wait_reason="quota"
    )
    Job.objects.grant(job.pk, slot_at=timezone.now() + timedelta(seconds=0.5))
    _failures, open_key, _probe = breaker._keys(account.app_id)
    opened_at = []

    def slot_wait(seconds):
        cache.set(open_key, time.time() + settings.BREAKER_COOLDOWN_SECONDS)
        opened_at.append(time.time())
        time.sleep(seconds)

    monkeypatch.setattr(runner, "time", mock.Mock(wraps=time, sleep=slot_wait))
    job_publish(Job.objects.get(pk=job.pk))
    run_queued_jobs(stub_broker, stub_worker)

    assert status(world.alpha, str(job.pk))["state"] == "completed"
    calls = [c for c in world.sandbox.app.counters.calls(limit=10) if c["method"] == "flickr.test.echo"]
    assert len(calls) == 1
    assert opened_at and calls[0]["ts"] >= opened_at[0] + settings.BREAKER_COOLDOWN_SECONDS, (
        "the call waited out the cool-down"
    )
    # The slot it held was spent while the circuit was open; it does not come back as "missed".
    events = [r.msg["event"] for r in caplog.records if isinstance(r.msg, dict)]
    assert "job_waiting" in events and "quota_slot_missed" not in events


def test_a_disabled_key_opens_the_circuit_at_once(world, stub_broker, stub_worker):
    world.sandbox.app.faults.add("key_expired", method="flickr.test.echo", count=1)
    account = world.alpha.accounts[0]
    failed = enqueue(world.alpha, account)
    run_queued_jobs(stub_broker, stub_worker)
    assert status(world.alpha, failed)["error"]["code"] == "ERR_FLICKR_KEY_DISABLED"
    assert breaker.state(account.app_id) == breaker.State.OPEN

    held = enqueue(world.alpha, account, "flickr.test.login")
    run_queued_jobs(stub_broker, stub_worker)
    data = status(world.alpha, held)
    assert (data["state"], data["waiting_for"]) == ("retrying", "circuit_open")
    assert upstream(world, "flickr.test.login") == 0


# ------------------------------------------------------------------ archive


def fail_one(world, stub_broker, stub_worker) -> str:
    job_id = enqueue(world.alpha, world.alpha.accounts[0], "flickr.photos.getInfo", {"photo_id": "1"})
    run_queued_jobs(stub_broker, stub_worker)
    return job_id


def test_a_job_that_fails_for_good_is_archived_with_what_replays_it(world, stub_broker, stub_worker):
    job_id = fail_one(world, stub_broker, stub_worker)
    [archived] = FailedJob.objects.filter(job_id=job_id)
    job = Job.objects.get(pk=job_id)
    assert (archived.method, archived.params) == ("flickr.photos.getInfo", {"photo_id": "1"})
    assert (archived.error_class, archived.error_code, archived.flickr_code) == (
        "caller",
        "ERR_FLICKR_API",
        1,
    )
    assert archived.attempts == 1
    assert archived.request_id == job.request_id
    assert archived.account_id == job.account_id


def test_the_admin_lists_and_retries_archived_jobs(world, stub_broker, stub_worker, admin_client):
    job_id = fail_one(world, stub_broker, stub_worker)
    archived = FailedJob.objects.get(job_id=job_id)
    listing = admin_client.get("/admin/jobs/failedjob/?error_class__exact=caller")
    assert listing.status_code == 200 and job_id in listing.content.decode()
    detail = admin_client.get(f"/admin/jobs/failedjob/{archived.pk}/change/")
    assert detail.status_code == 200 and "ERR_FLICKR_API" in detail.content.decode()

    response = admin_client.post(
        "/admin/jobs/failedjob/",
        {"action": "retry_selected", "_selected_action": [archived.pk]},
        follow=True,
    )
    assert "1 job(s) queued again" in response.content.decode()
    run_queued_jobs(stub_broker, stub_worker)
    assert Job.objects.get(pk=job_id).state == JobState.FAILED
    history = FailedJob.objects.filter(job_id=job_id).order_by("archived_at")
    assert history.count() == 2 and history[0].retried_at is not None
    assert Job.objects.get(pk=job_id).attempts == 1, "the retry started again from the first attempt"
    page = admin_client.get(f"/admin/jobs/failedjob/{history[1].pk}/change/").content.decode()
    assert page.count("failed with ERR_FLICKR_API") == 2


def test_retrying_a_job_whose_account_needs_relinking_is_refused(
    world, stub_broker, stub_worker, admin_client
):
    job_id = fail_one(world, stub_broker, stub_worker)
    archived = FailedJob.objects.get(job_id=job_id)
    account = world.alpha.accounts[0]
    type(account).objects.filter(pk=account.pk).update(status=AccountStatus.NEEDS_RELINK)
    response = admin_client.post(
        "/admin/jobs/failedjob/", {"action": "retry_selected", "_selected_action": [archived.pk]}, follow=True
    )
    assert "link it again" in response.content.decode()
    assert Job.objects.get(pk=job_id).state == JobState.FAILED


def test_purging_archive_entries_leaves_the_jobs(world, stub_broker, stub_worker, admin_client):
    job_id = fail_one(world, stub_broker, stub_worker)
    archived = FailedJob.objects.get(job_id=job_id)
    admin_client.post(
        "/admin/jobs/failedjob/", {"action": "purge_selected", "_selected_action": [archived.pk]}
    )
    assert not FailedJob.objects.exists()
    assert Job.objects.filter(pk=job_id).exists()


def test_readyz_and_the_dashboard_show_an_open_circuit_and_the_quota_left(world, admin_client, settings):
    settings.FLICKR_QUOTA_PER_HOUR = 3600
    app = world.alpha.accounts[0].app
    from flickr import ratelimit

    for _ in range(10):
        ratelimit.reserve(app.pk)
    breaker.record_failure(app.pk, key_disabled=True)

    ready = admin_client.get("/readyz").json()
    assert ready["status"] == "ok"
    assert ready["flickr_circuits"][app.name] == "open"

    from flickr.status import key_states

    [state] = [k for k in key_states() if k["app_name"] == app.name]
    assert state["circuit_state"] == "open"
    assert 3590 <= state["quota_remaining"] < 3600, "slots reserved ahead are not left"
    page = admin_client.get("/admin/").content.decode()
    assert app.name in page and "open" in page
