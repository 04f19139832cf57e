"""Redis down: the hub pointed at a port where nothing listens, as production would be when
its Redis dies. Jobs still complete; the cache misses, identical calls are no longer shared,
the circuit reads closed, and the quota falls back to each process's share of it. Nothing is
mocked: django-redis and the limiter's Lua script really fail to connect.
"""

from __future__ import annotations

import itertools
import json
import time

import pytest

from conftest import run_queued_jobs
from flickr import breaker, ratelimit, response_cache, shared_state
from jobs.models import Job, JobState

pytestmark = pytest.mark.usefixtures("transactional_db")

URL = "/api/v1/flickr/rest"


@pytest.fixture
def warnings_logged(monkeypatch):
    lines: list[dict] = []
    monkeypatch.setattr(shared_state.log, "warning", lambda event, **kw: lines.append({"event": event, **kw}))
    return lines


def enqueue(client, account, method="flickr.test.echo", params=None) -> str:
    body = {"method": method, "params": params or {}, "user_id": str(account.user_id)}
    response = client.api().post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()["data"]["job_id"]


def upstream(world, method: str) -> int:
    return world.sandbox.app.counters.snapshot()["by_method"].get(method, 0)


def test_reads_complete_without_the_cache_or_coalescing_and_it_is_said_once(
    world, stub_broker, stub_worker, redis_down, warnings_logged
):
    account = world.alpha.accounts[0]
    ids = [
        enqueue(world.alpha, account, "flickr.people.getInfo", {"user_id": account.nsid}) for _ in range(3)
    ]
    run_queued_jobs(stub_broker, stub_worker)
    again = enqueue(world.alpha, account, "flickr.people.getInfo", {"user_id": account.nsid})
    run_queued_jobs(stub_broker, stub_worker)

    jobs = [Job.objects.get(pk=i) for i in [*ids, again]]
    assert [j.state for j in jobs] == [JobState.COMPLETED] * 4
    assert not any(j.from_cache for j in jobs)
    assert upstream(world, "flickr.people.getInfo") == 4, "each job made its own call"
    said = [line for line in warnings_logged if line["event"] == "redis_unavailable"]
    assert len(said) == 1, "logged once a minute, not once a call"
    assert said[0]["error"] in ("ConnectionInterrupted", "ConnectionError")


def test_a_failure_marks_redis_down_for_a_while_so_calls_do_not_each_wait_for_it(redis_down):
    assert shared_state.available()
    assert response_cache.get("some-call", max_age=None) is None
    assert not shared_state.available()
    started = time.monotonic()
    for _ in range(200):
        response_cache.get("some-call", max_age=None)
        breaker.check(1, job_id="j")
        ratelimit.reserve(1)
    assert time.monotonic() - started < 1.0


def test_the_quota_falls_back_to_this_processs_share_of_it(redis_down, settings):
    settings.FLICKR_QUOTA_PER_HOUR = 3600  # one call a second for the key
    settings.FLICKR_QUOTA_BURST = 2
    settings.FLICKR_QUOTA_LOCAL_SHARE = 4  # four processes: one call every four seconds each
    waits = [ratelimit.reserve(7) for _ in range(4)]
    assert waits[0] == 0
    gaps = [b - a for a, b in itertools.pairwise(waits[1:])]
    assert gaps == [pytest.approx(4.0, abs=0.05)] * 2
    assert ratelimit.backlog_seconds(7) == pytest.approx(16.0, abs=0.1)
    assert ratelimit.reserve(8) == 0, "each consumer key has its own budget"


def test_the_circuit_reads_closed_and_retried_jobs_still_complete(
    world, stub_broker, stub_worker, redis_down, settings
):
    settings.BREAKER_FAILURE_THRESHOLD = 2
    settings.JOB_RETRY_ATTEMPTS = 5
    world.sandbox.app.faults.add("http_error", method="flickr.test.echo", count=3, status=503)
    ids = [enqueue(world.alpha, world.alpha.accounts[0], params={"n": str(n)}) for n in range(3)]
    run_queued_jobs(stub_broker, stub_worker)

    assert [Job.objects.get(pk=i).state for i in ids] == [JobState.COMPLETED] * 3
    assert breaker.state(world.alpha.accounts[0].app_id) is breaker.State.CLOSED
    assert upstream(world, "flickr.test.echo") == 6  # three refused, then one success each


def test_uploads_complete_too(world, stub_broker, stub_worker, redis_down):
    import io

    from flickr.fake.testing import tiny_jpeg

    photo = io.BytesIO(tiny_jpeg())
    photo.name = "pier.jpg"
    response = world.alpha.api().post(
        URL,
        {"user_id": str(world.alpha.accounts[0].user_id), "target": "upload", "photo": photo},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    run_queued_jobs(stub_broker, stub_worker)
    assert Job.objects.get(pk=response.json()["data"]["job_id"]).state == JobState.COMPLETED
