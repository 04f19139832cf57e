"""Fair use of a Flickr key's quota: shares by client weight, then by account; caps; an idle
client's share reused; urgent calls first and bulk not starved; parking and releasing jobs."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from itertools import pairwise

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import run_queued_jobs
from flickr import ratelimit
from jobs.dispatcher import Dispatcher, FairShare, _Queue
from jobs.models import Job, JobState, Priority
from jobs.tests.test_batch import call
from tests.stack import wait_until

# Workers run in threads of their own, with connections of their own: they must see the rows.
pytestmark = pytest.mark.usefixtures("transactional_db")


def _serve(
    share: FairShare, queues: dict[str, _Queue], picks: int, weights=None
) -> list[tuple[str, str, bool]]:
    served = []
    for _ in range(picks):
        choice = share.choose(queues, skip=set())
        if choice is None:
            break
        client, account, urgent = choice
        share.charge(client, account, weight=(weights or {}).get(client, 1))
        queues[client].accounts[account][0 if urgent else 1] -= 1
        served.append(choice)
    return served


def _queues(**clients: dict[str, tuple[int, int]]) -> dict[str, _Queue]:
    return {c: _Queue({a: list(counts) for a, counts in accounts.items()}) for c, accounts in clients.items()}


# ------------------------------------------------------------------ the stride scheduler


def test_equal_clients_take_turns_whatever_their_backlog():
    served = _serve(FairShare(), _queues(flood={"f": (0, 10_000)}, light={"l": (0, 5)}), 10)
    assert [c for c, _, _ in served] == ["flood", "light"] * 5


def test_weights_divide_the_calls_in_proportion():
    served = _serve(
        FairShare(),
        _queues(a={"x": (0, 1000)}, b={"y": (0, 1000)}, c={"z": (0, 1000)}),
        600,
        weights={"a": 3, "b": 2, "c": 1},
    )
    assert Counter(c for c, _, _ in served) == {"a": 300, "b": 200, "c": 100}


def test_an_idle_clients_share_goes_to_the_busy_and_it_earns_no_credit_while_away():
    share = FairShare()
    queues = _queues(busy={"b": (0, 1000)}, idle={"i": (0, 0)})
    assert {c for c, _, _ in _serve(share, queues, 100)} == {"busy"}  # all of it, at once
    queues["idle"].accounts["i"][1] = 100  # back with work
    back = [c for c, _, _ in _serve(share, queues, 20)]
    # Its share again from now on — not the 100 calls it "missed" in a row.
    assert Counter(back) == {"busy": 10, "idle": 10}


def test_within_a_client_each_account_gets_an_equal_share():
    served = _serve(FairShare(), _queues(c={"big": (0, 1000), "small": (0, 1000), "tiny": (0, 2)}), 12)
    assert Counter(a for _, a, _ in served) == {"big": 5, "small": 5, "tiny": 2}


def test_a_clients_urgent_calls_go_first_and_do_not_take_from_other_clients():
    served = _serve(FairShare(), _queues(a={"x": (3, 100)}, b={"y": (0, 100)}), 8)
    assert [(c, urgent) for c, _, urgent in served][:6] == [
        ("a", True),
        ("b", False),
        ("a", True),
        ("b", False),
        ("a", True),
        ("b", False),
    ]
    assert served[6:] == [("a", "x", False), ("b", "y", False)]


# ------------------------------------------------------------------ the dispatcher on the database


@pytest.fixture
def quota(settings):
    """A fast key: one call every 10 ms, no burst; the dispatcher takes 0.4 s ahead a look."""
    settings.FLICKR_QUOTA_PER_HOUR = 360_000
    settings.FLICKR_QUOTA_BURST = 0
    settings.FLICKR_DISPATCH_INTERVAL_MS = 200
    ratelimit.reset()
    return settings


def _park(client, account, n, *, priority=Priority.NORMAL, age_seconds=0.0) -> list[Job]:
    at = timezone.now() - timedelta(seconds=age_seconds)
    return [
        Job.objects.create(
            client=client.model,
            account=account,
            method="flickr.test.echo",
            params={"n": str(i)},
            wait_reason="quota",
            quota_parked_at=at + timedelta(microseconds=i),
            priority=priority,
        )
        for i in range(n)
    ]


def _granted() -> Counter:
    return Counter(
        Job.objects.filter(next_attempt_at__isnull=False, quota_slot_at__isnull=False).values_list(
            "client__name", flat=True
        )
    )


def _rounds(dispatcher: Dispatcher, n: int) -> None:
    """n looks of the dispatcher, each with the key's slots of the look before spent."""
    for _ in range(n):
        dispatcher.dispatch()
        ratelimit.reset()


def test_the_dispatcher_shares_a_key_by_client_weight(world, quota, stub_broker):
    world.alpha.model.quota_weight = 2
    world.alpha.model.save()
    _park(world.alpha, world.alpha.accounts[0], 300)
    _park(world.beta, world.beta.accounts[0], 300)
    dispatcher = Dispatcher()
    dispatcher.dispatch()
    # A look takes slots the key's pace apart (10 ms), no further ahead than its horizon.
    slots = sorted(Job.objects.filter(quota_slot_at__isnull=False).values_list("quota_slot_at", flat=True))
    assert min((b - a).total_seconds() for a, b in pairwise(slots)) >= 0.0099
    assert (slots[-1] - slots[0]).total_seconds() <= 0.41
    ratelimit.reset()
    _rounds(dispatcher, 2)
    granted = _granted()
    total = granted["alpha"] + granted["beta"]
    assert total > 60, granted  # about 40 slots a look
    assert abs(granted["alpha"] / total - 2 / 3) < 0.03, granted
    # Each released job went to its queue.
    assert stub_broker.queues["flickr_rest"].qsize() == total
    assert not Job.objects.filter(quota_slot_at__isnull=False, published_at__isnull=True).exists()


def test_an_idle_clients_share_is_used_by_the_busy_one(world, quota, stub_broker):
    _park(world.alpha, world.alpha.accounts[0], 200)
    _rounds(Dispatcher(), 2)
    assert _granted()["alpha"] >= 70  # the whole key: nothing held back for beta


def test_a_capped_client_gets_no_more_than_its_share_even_alone(world, quota, stub_broker):
    world.alpha.model.quota_max_percent = 20
    world.alpha.model.save()
    _park(world.alpha, world.alpha.accounts[0], 200)
    _park(world.beta, world.beta.accounts[0], 400)
    dispatcher = Dispatcher()

    def for_a_while(seconds: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < seconds:  # real time: the cap is a budget over time
            dispatcher.dispatch()
            time.sleep(0.1)
        return time.monotonic() - started

    # The key allows 100 calls a second; alpha 20 of them, plus what the horizon (0.4 s) and
    # its burst (none here) take ahead.
    elapsed = for_a_while(1.2)
    granted = _granted()
    assert granted["beta"] > granted["alpha"] > 0, granted
    assert granted["alpha"] <= 20 * (elapsed + 0.4) + 1, (granted, elapsed)

    Job.objects.filter(client=world.beta.model).delete()  # alone now: still 20% of the key
    before = _granted()["alpha"]
    elapsed = for_a_while(1.0)
    assert _granted()["alpha"] - before <= 20 * (elapsed + 0.4) + 1


def test_each_account_of_a_client_gets_an_equal_share(world, quota, stub_broker):
    first, second = world.alpha.accounts
    _park(world.alpha, first, 300)
    _park(world.alpha, second, 300)
    _rounds(Dispatcher(), 2)
    per_account = Counter(
        Job.objects.filter(quota_slot_at__isnull=False).values_list("account_id", flat=True)
    )
    assert abs(per_account[first.pk] - per_account[second.pk]) <= 1, per_account


def test_each_key_has_its_own_quota_and_its_own_line(world, quota, stub_broker):
    from accounts.models import FlickrApp

    second = FlickrApp.objects.create(name="second key", api_key="k2", quota_per_hour=36_000)  # 10 a second
    account = world.beta.accounts[0]
    account.app = second
    account.save()
    _park(world.alpha, world.alpha.accounts[0], 100)
    _park(world.beta, account, 100)
    Dispatcher().dispatch()
    granted = _granted()
    # In the 0.4 s the dispatcher looks ahead: about 40 calls of the first key (100 a second),
    # about 4 of the second — and neither key's line waits for the other's.
    assert granted["alpha"] >= 30, granted
    assert 3 <= granted["beta"] <= 6, granted
    usage = world.beta.api().get("/api/v1/usage").json()["data"]
    assert [(k["flickr_app"], k["quota_per_hour"], k["waiting_for_quota_now"]) for k in usage["keys"]] == [
        ("second key", 36_000, 100 - granted["beta"])
    ]


def test_high_priority_goes_first_and_aged_bulk_is_not_starved(world, quota, settings, stub_broker):
    settings.FLICKR_PRIORITY_AGING_SECONDS = 60
    account = world.alpha.accounts[0]
    bulk = _park(world.alpha, account, 100)
    high = _park(world.alpha, account, 20, priority=Priority.HIGH)
    Dispatcher().dispatch()
    released = set(Job.objects.filter(quota_slot_at__isnull=False).values_list("pk", flat=True))
    assert {j.pk for j in high} <= released
    assert len(released - {j.pk for j in high}) == len(released) - 20  # then bulk, in order
    assert {j.pk for j in bulk[: len(released) - 20]} == released - {j.pk for j in high}

    Job.objects.all().delete()
    ratelimit.reset()
    aged = _park(world.alpha, account, 5, age_seconds=120)  # waited past the aging time
    high = _park(world.alpha, account, 200, priority=Priority.HIGH)
    Dispatcher().dispatch()
    assert Job.objects.filter(pk__in=[j.pk for j in aged], quota_slot_at__isnull=False).count() == 5


def test_a_job_released_and_not_published_is_left_for_the_sweeper(world, quota, stub_broker, monkeypatch):
    import dramatiq

    from jobs import dispatcher as module
    from jobs.services import jobs_sweep

    [job] = _park(world.alpha, world.alpha.accounts[0], 1)

    def refuse(*args, **kwargs):
        raise dramatiq.errors.ConnectionClosed(OSError("broker down"))

    monkeypatch.setattr(module, "job_publish", refuse)
    Dispatcher().dispatch()
    job.refresh_from_db()
    assert job.next_attempt_at is not None and job.published_at is None
    monkeypatch.undo()
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert jobs_sweep()["queued"] == 1
    assert stub_broker.queues["flickr_rest"].qsize() == 1


# ------------------------------------------------------------------ through the API and a worker


def _enqueue(client, account, **body):
    response = client.api().post(
        "/api/v1/flickr/rest",
        {
            "method": "flickr.test.echo",
            "params": {"n": "x"},
            "user_id": str(account.user_id),
            **body,
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    return response.json()["data"]["job_id"]


def test_a_light_client_is_not_held_behind_a_flood(world, settings, stub_broker, stub_worker):
    settings.FLICKR_QUOTA_PER_HOUR = 36_000  # a call every 100 ms
    settings.FLICKR_QUOTA_BURST = 0
    ratelimit.reset()
    for _ in range(20):  # the key is already short when they come (2 s of slots taken)
        ratelimit.reserve(world.alpha.accounts[0].app_id)
    flood = [_enqueue(world.alpha, world.alpha.accounts[0], params={"n": f"flood-{i}"}) for i in range(30)]
    light = [_enqueue(world.beta, world.beta.accounts[0], params={"n": f"light-{i}"}) for i in range(3)]
    # The flood found the key short and parked at once; it did not go through the queue.
    assert Job.objects.filter(pk__in=flood, wait_reason="quota", state=JobState.QUEUED).count() >= 25
    run_queued_jobs(stub_broker, stub_worker)

    done = dict(Job.objects.filter(pk__in=flood + light).values_list("pk", "state"))
    assert set(done.values()) == {JobState.COMPLETED}
    order = [
        str(pk)
        for pk in Job.objects.filter(pk__in=flood + light)
        .order_by("finished_at")
        .values_list("pk", flat=True)
    ]
    # Turns alternate while both wait: beta's three calls are done among the first ten, not
    # after alpha's thirty.
    assert max(order.index(j) for j in light) < 10, order
    # Each upstream call at or after its slot: never faster than the key's pace.
    times = sorted(c["ts"] for c in world.sandbox.app.counters.calls() if c["method"] == "flickr.test.echo")
    assert len(times) == 33
    assert min(times[i + 4] - times[i] for i in range(len(times) - 4)) > 0.3


def test_a_batch_on_a_key_with_free_slots_sends_only_that_many_and_parks_the_rest(
    world, settings, stub_broker, request, monkeypatch
):
    from jobs import services

    # Four batches of 500 arriving together at an idle key used to go through the queue whole,
    # to be parked by the workers, while the jobs the dispatcher released waited behind them.
    settings.FLICKR_QUOTA_PER_HOUR = 36_000  # a call every 100 ms
    settings.FLICKR_QUOTA_BURST = 2  # so three calls may go at once
    monkeypatch.setattr(services, "PARKS_LOOK_SECONDS", 0.05)  # and none more in that time
    ratelimit.reset()
    account = world.alpha.accounts[0]
    calls = [call(account, i) for i in range(20)]
    response = world.alpha.api().post("/api/v1/flickr/batch", {"calls": calls}, format="json")
    assert response.status_code == 202, response.content
    ids = [j["job_id"] for j in response.json()["data"]["jobs"]]
    assert stub_broker.queues["flickr_rest"].qsize() == 3
    parked = Job.objects.filter(pk__in=ids, wait_reason="quota", quota_parked_at__isnull=False)
    assert set(map(str, parked.values_list("pk", flat=True))) == set(ids[3:]), "the first three go, in order"

    # Once the workers have taken those three slots, a second batch finds none: all of it parks.
    for _ in range(3):
        ratelimit.reserve(account.app_id)
    response = world.alpha.api().post("/api/v1/flickr/batch", {"calls": calls[:5]}, format="json")
    assert response.status_code == 202
    assert stub_broker.queues["flickr_rest"].qsize() == 3

    run_queued_jobs(stub_broker, request.getfixturevalue("stub_worker"))  # workers start only now
    assert set(Job.objects.values_list("state", flat=True)) == {JobState.COMPLETED}
    assert Job.objects.filter(attempts__gt=1).count() == 0


def test_a_batch_on_a_key_whose_quota_outruns_the_workers_goes_through_whole(world, settings, stub_broker):
    settings.FLICKR_QUOTA_PER_HOUR = 36_000_000  # 10,000 calls a second
    ratelimit.reset()
    calls = [call(world.alpha.accounts[0], i) for i in range(50)]
    response = world.alpha.api().post("/api/v1/flickr/batch", {"calls": calls}, format="json")
    assert response.status_code == 202
    assert stub_broker.queues["flickr_rest"].qsize() == 50
    assert not Job.objects.filter(wait_reason="quota").exists()


def test_a_starting_dispatcher_thread_releases_parked_jobs_at_once(world, settings, stub_broker, monkeypatch):
    import threading

    from jobs import services
    from jobs.dispatcher import DispatcherThread

    settings.FLICKR_QUOTA_PER_HOUR = 36_000
    settings.FLICKR_QUOTA_BURST = 0
    ratelimit.reset()
    monkeypatch.setattr(services, "_slot_free_at", {})  # no earlier test's "the key was free"
    for _ in range(10):  # the key is short: the job parks at enqueue
        ratelimit.reserve(world.alpha.accounts[0].app_id)
    job_id = _enqueue(world.alpha, world.alpha.accounts[0])
    assert Job.objects.parked().filter(pk=job_id).exists()
    ratelimit.reset()
    # Its first look comes before any wait: with a minute between renewals it would otherwise
    # idle that minute before taking the role.
    monkeypatch.setattr(DispatcherThread, "RENEW_SECONDS", 60.0)
    thread = DispatcherThread(0.05)
    threading.Thread.start(thread)  # conftest keeps workers' dispatcher threads from starting
    try:
        wait_until(lambda: not Job.objects.parked().filter(pk=job_id).exists(), "the job's release", 10)
    finally:
        thread.stop()
        thread.join(timeout=10)
    assert stub_broker.queues["flickr_rest"].qsize() == 1


def test_wait_makes_a_call_high_priority_and_priority_is_validated(world, stub_broker):
    account = world.alpha.accounts[0]
    job_id = _enqueue(world.alpha, account)
    assert Job.objects.get(pk=job_id).priority == Priority.NORMAL
    response = world.alpha.api().post(
        "/api/v1/flickr/rest?wait=0.01",
        {"method": "flickr.test.echo", "user_id": str(account.user_id)},
        format="json",
    )
    assert Job.objects.get(pk=response.json()["data"]["job_id"]).priority == Priority.HIGH
    high = _enqueue(world.alpha, account, priority="high")
    assert Job.objects.get(pk=high).priority == Priority.HIGH
    bad = world.alpha.api().post(
        "/api/v1/flickr/rest",
        {"method": "flickr.test.echo", "user_id": str(account.user_id), "priority": "urgent"},
        format="json",
    )
    assert bad.status_code == 400
    assert "priority" in str(bad.json()["error"]["details"])


def test_a_cacheable_read_is_not_parked_it_may_need_no_quota(world, settings, stub_broker, stub_worker):
    settings.FLICKR_QUOTA_PER_HOUR = 1
    settings.FLICKR_QUOTA_BURST = 0
    ratelimit.reset()
    account = world.alpha.accounts[0]
    body = {"method": "flickr.people.getInfo", "params": {"user_id": account.nsid}}
    first = _enqueue(world.alpha, account, **body)
    run_queued_jobs(stub_broker, stub_worker, patience=0)
    assert Job.objects.get(pk=first).state == JobState.COMPLETED
    _enqueue(world.alpha, account)  # a write: parks, the key is spent for the hour
    again = _enqueue(world.alpha, account, **body)
    run_queued_jobs(stub_broker, stub_worker, patience=0)
    job = Job.objects.get(pk=again)
    assert job.state == JobState.COMPLETED and job.from_cache


# ------------------------------------------------------------------ usage


def test_usage_shows_a_clients_calls_answers_waits_and_refusals_and_nobody_elses(
    world, settings, stub_broker, stub_worker
):
    settings.FLICKR_QUOTA_PER_HOUR = 36_000
    settings.FLICKR_QUOTA_BURST = 0
    ratelimit.reset()
    account = world.alpha.accounts[0]
    for i in range(3):
        _enqueue(world.alpha, account, params={"n": str(i)})
    read = {"method": "flickr.people.getInfo", "params": {"user_id": account.nsid}}
    _enqueue(world.alpha, account, **read)
    run_queued_jobs(stub_broker, stub_worker)
    _enqueue(world.alpha, account, **read)  # from the cache
    run_queued_jobs(stub_broker, stub_worker)
    settings.JOB_MAX_IN_FLIGHT_PER_CLIENT = 0
    refused = world.alpha.api().post(
        "/api/v1/flickr/rest", {"method": "flickr.test.echo", "user_id": str(account.user_id)}, format="json"
    )
    assert refused.status_code == 429

    response = world.alpha.api().get("/api/v1/usage")
    assert response.status_code == 200
    usage = response.json()["data"]
    calls = [
        c
        for c in world.sandbox.app.counters.calls()
        if c["method"] in ("flickr.test.echo", "flickr.people.getInfo")
    ]
    assert usage["flickr_calls"] == len(calls) == 4
    assert usage["answered_without_flickr"] == 1
    assert usage["rejections"] == 1
    assert usage["quota_waits"] >= 1  # 3 calls 100 ms apart: some waited for their slot
    assert usage["waiting_for_quota_now"] == 0 and usage["unfinished_jobs"] == 0
    assert usage["quota_weight"] == 1 and usage["quota_max_percent"] is None
    [key] = usage["keys"]
    assert key["flickr_calls"] == 4 and key["quota_per_hour"] == 36_000
    assert key["share_of_quota_percent"] == round(100 * 4 / 36_000, 2)
    assert settings.FLICKR_API_KEY not in response.content.decode()

    other = world.beta.api().get("/api/v1/usage").json()["data"]
    assert other["flickr_calls"] == other["rejections"] == other["answered_without_flickr"] == 0
    assert APIClient().get("/api/v1/usage", HTTP_AUTHORIZATION="Bearer nope").status_code == 401


def test_the_admin_sets_weights_and_caps_and_shows_usage(world, admin_client):
    client = world.alpha.model
    page = admin_client.get(f"/admin/accounts/apiclient/{client.pk}/change/").content.decode()
    assert "Share of the Flickr quota" in page and "Flickr calls" in page
    response = admin_client.post(
        f"/admin/accounts/apiclient/{client.pk}/change/",
        {"name": client.name, "is_active": "on", "quota_weight": "3", "quota_max_percent": "150"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "Ensure this value is less than or equal to 100" in response.content.decode()
    response = admin_client.post(
        f"/admin/accounts/apiclient/{client.pk}/change/",
        {"name": client.name, "is_active": "on", "quota_weight": "3", "quota_max_percent": "20"},
    )
    assert response.status_code == 302
    client.refresh_from_db()
    assert (client.quota_weight, client.quota_max_percent) == (3, 20)
    listing = admin_client.get("/admin/accounts/apiclient/").content.decode()
    assert "Flickr calls (1 h)" in listing
