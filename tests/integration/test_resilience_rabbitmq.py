"""Resilience on the real stack: RabbitMQ, Redis shared by several worker processes,
PostgreSQL, and the sandbox's quota and fault injection. Upstream calls are counted by the
sandbox, so each claim is about what Flickr would have seen."""

from __future__ import annotations

import concurrent.futures
import time

import requests

from jobs.models import Job
from tests.integration.conftest import Hub, wait_for_state


def enqueue(hub: Hub, api_key: str, user_id: str, method="flickr.test.echo", params=None, headers=None):
    return requests.post(
        f"{hub.url}/api/v1/flickr/rest",
        json={"method": method, "params": params or {}, "user_id": user_id},
        headers={"Authorization": f"Bearer {api_key}", **(headers or {})},
        timeout=15,
    )


def echo_calls(world) -> list[dict]:
    return [c for c in world.sandbox.app.counters.calls(limit=1000) if c["method"] == "flickr.test.echo"]


def test_twice_the_quota_is_paced_with_no_429_and_the_quota_nearly_all_used(make_hub, world):
    # The sandbox allows 100 calls per 20 s window; the hub paces itself just under that,
    # leaving room for its burst allowance, and is sent twice what the window allows.
    window, allowed = 20.0, 100
    world.sandbox.app.set_quota(allowed, window_seconds=window)
    try:
        _paced_under_twice_the_quota(make_hub, world, window, allowed)
    finally:
        world.sandbox.app.set_quota(None)


def _paced_under_twice_the_quota(make_hub, world, window: float, allowed: int) -> None:
    # The hub's pace: 97% of the window's budget, so its burst allowance and a call firing a
    # few milliseconds after its slot still fit in any sliding window.
    burst = 2
    per_hour = int(allowed * 0.97 / window * 3600)
    hub = make_hub(FLICKR_QUOTA_PER_HOUR=str(per_hour), FLICKR_QUOTA_BURST=str(burst))
    hub.start_web()
    hub.start_worker("flickr_rest", threads=8, processes=2)
    key, user_id = world.alpha.key, str(world.alpha.accounts[0].user_id)

    # A sustained load of twice the budget: 2 x allowed calls spread over one window.
    rate = 2 * allowed / window
    started = time.monotonic()

    def send(n: int) -> int:
        time.sleep(max(0.0, started + n / rate - time.monotonic()))
        return enqueue(hub, key, user_id, params={"n": str(n)}).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, range(2 * allowed)))
    assert set(statuses) == {202}

    calls = echo_calls(world)
    deadline = time.monotonic() + window + 15
    while time.monotonic() < deadline:
        calls = echo_calls(world)
        if calls and calls[-1]["ts"] - calls[0]["ts"] >= window + 1:
            break
        time.sleep(0.5)

    first = calls[0]["ts"]
    in_window = [c for c in calls if c["ts"] < first + window]
    refused = [c for c in calls if c["status"] == 429]
    used = len(in_window) / allowed
    print(
        f"\nquota: {len(in_window)} of {allowed} calls used in the first {window:.0f} s window ({used:.1%}), "
        f"{len(refused)} answered 429"
    )
    buckets = [0] * 25
    for c in calls:
        if c["ts"] - first < 25:
            buckets[int(c["ts"] - first)] += 1
    assert refused == [], (buckets, [round(c["ts"] - first, 2) for c in refused])
    assert used >= 0.95
    waiting = Job.objects.filter(wait_reason="quota").count() + Job.objects.filter(state="queued").count()
    assert waiting > 0, "the jobs beyond the budget waited instead of failing"
    assert Job.objects.filter(state="failed").count() == 0


def test_the_circuit_is_shared_by_worker_processes_and_one_probe_reopens_the_way(make_hub, world):
    cooldown = 3
    hub = make_hub(
        BREAKER_FAILURE_THRESHOLD="3",
        BREAKER_COOLDOWN_SECONDS=str(cooldown),
        # One call a second: the three failures come one after another, with no success between.
        FLICKR_QUOTA_PER_HOUR="3600",
        JOB_RETRY_ATTEMPTS="10",
        JOB_RETRY_MIN_BACKOFF_MS="100",
        JOB_RETRY_MAX_BACKOFF_MS="300",
    )
    hub.start_web()
    hub.start_worker("flickr_rest", threads=4, processes=2)
    key, user_id = world.alpha.key, str(world.alpha.accounts[0].user_id)
    world.sandbox.app.faults.add("http_error", method="flickr.test.echo", count=3, status=503)

    job_ids = [enqueue(hub, key, user_id, params={"n": str(n)}).json()["data"]["job_id"] for n in range(10)]
    results = [wait_for_state(hub, key, j, {"completed", "failed"}, timeout=60) for j in job_ids]

    assert [r["state"] for r in results] == ["completed"] * 10
    calls = echo_calls(world)
    failures = [c for c in calls if c["status"] == 503]
    assert len(failures) == 3
    assert len(calls) == 13, "no call while the circuit was open: 3 failures, then 10 successes"
    opened_at = failures[-1]["ts"]
    # A call already past the breaker when the third failure came back may still arrive just
    # after it; through the rest of the cool-down nothing may.
    during = [c["ts"] - opened_at for c in calls if opened_at + 0.5 < c["ts"] < opened_at + cooldown - 0.2]
    assert during == [], "no call while the circuit was open"
    assert "circuit_opened" in hub.logs() and "circuit_closed" in hub.logs()


def test_a_hundred_identical_reads_make_one_call_across_processes(make_hub, world):
    hub = make_hub()
    hub.start_web()
    hub.start_worker("flickr_rest", threads=8, processes=2)
    key, account = world.alpha.key, world.alpha.accounts[0]
    world.sandbox.app.faults.add("latency", method="flickr.people.getInfo", count=1, ms=3000)

    def one(_: int) -> str:
        response = enqueue(hub, key, str(account.user_id), "flickr.people.getInfo", {"user_id": account.nsid})
        return response.json()["data"]["job_id"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        job_ids = list(pool.map(one, range(100)))
    results = [wait_for_state(hub, key, j, {"completed", "failed"}, timeout=60) for j in job_ids]

    assert [r["state"] for r in results] == ["completed"] * 100
    assert world.sandbox.app.counters.snapshot()["by_method"]["flickr.people.getInfo"] == 1
    assert sum(1 for r in results if r["returnvalue"]["from_cache"]) == 99


def test_a_worker_killed_during_a_retry_backoff_loses_nothing_and_runs_once(make_hub, world):
    hub = make_hub(JOB_RETRY_MIN_BACKOFF_MS="4000", JOB_RETRY_MAX_BACKOFF_MS="4000")
    hub.start_web()
    hub.start_worker("flickr_rest", threads=2)
    key, user_id = world.alpha.key, str(world.alpha.accounts[0].user_id)
    world.sandbox.app.faults.add("http_error", method="flickr.test.echo", count=1, status=503)

    job_id = enqueue(hub, key, user_id, params={"marker": "backoff"}).json()["data"]["job_id"]
    waiting = wait_for_state(hub, key, job_id, {"retrying"}, timeout=30)
    assert waiting["error"]["code"] == "ERR_FLICKR_UNAVAILABLE"
    hub.kill_worker("flickr_rest")  # the delayed retry message dies with it, unacknowledged

    hub.start_worker("flickr_rest", threads=2)
    done = wait_for_state(hub, key, job_id, {"completed", "failed"}, timeout=60)
    assert done["state"] == "completed"
    assert done["attempts"] == 2
    time.sleep(1.5)  # a duplicate run would show up here
    assert len(echo_calls(world)) == 2, "the failed call and the retry, nothing more"
    assert Job.objects.get(pk=job_id).attempts == 2


def test_concurrent_requests_with_one_idempotency_key_make_one_job(make_hub, world):
    hub = make_hub()
    hub.start_web()
    key, user_id = world.alpha.key, str(world.alpha.accounts[0].user_id)

    def send(_: int) -> requests.Response:
        return enqueue(hub, key, user_id, params={"n": "1"}, headers={"Idempotency-Key": "race-1"})

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {202, 409} and 202 in statuses
    assert len({a.json()["data"]["job_id"] for a in answers if a.status_code == 202}) == 1
    assert Job.objects.count() == 1
    other = enqueue(hub, key, user_id, params={"n": "2"}, headers={"Idempotency-Key": "race-1"})
    assert other.status_code == 422


def test_a_job_that_fails_for_good_is_archived_and_its_message_dead_lettered(make_hub, world, settings):
    import json

    import pika

    from jobs.models import FailedJob

    hub = make_hub()
    hub.start_web()
    hub.start_worker("flickr_rest", threads=2)
    key, user_id = world.alpha.key, str(world.alpha.accounts[0].user_id)
    job_id = enqueue(hub, key, user_id, "flickr.photos.getInfo", {"photo_id": "1"}).json()["data"]["job_id"]
    assert wait_for_state(hub, key, job_id, {"completed", "failed"})["state"] == "failed"

    # The archive row and the dead letter are written just after the job is marked failed.
    deadline = time.monotonic() + 10
    while not FailedJob.objects.filter(job_id=job_id, flickr_code=1).exists():
        assert time.monotonic() < deadline, "the failed job was not archived"
        time.sleep(0.1)
    # The run's vhost is shared by every test of the run: earlier failures may be queued too.
    found = None
    connection = pika.BlockingConnection(pika.URLParameters(settings.BROKER_URL.split("?")[0]))
    try:
        channel = connection.channel()
        while found is None and time.monotonic() < deadline:
            try:
                method, properties, body = channel.basic_get("flickr_dlq", auto_ack=True)
            except pika.exceptions.ChannelClosedByBroker:  # not declared yet
                channel = connection.channel()
                method = None
            if method is None:
                time.sleep(0.1)
            elif json.loads(body)["jobId"] == job_id:
                found = (properties, json.loads(body))
    finally:
        connection.close()
    assert found is not None, "the failed job's message is in flickr_dlq"
    properties, message = found
    assert (message["jobId"], message["method"], message["error"]["flickr_code"]) == (
        job_id,
        "flickr.photos.getInfo",
        1,
    )
    assert properties.headers == {"attempts": 1, "failed": True}
