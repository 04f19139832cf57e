"""What a job costs the shared state: the quota and circuit gauges are read once a second per
process and key, not once per job."""

from __future__ import annotations

import pytest

from conftest import run_queued_jobs
from flickr import ratelimit
from jobs import runner
from jobs.models import Job

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_a_burst_of_jobs_reads_the_quota_gauge_once(world, stub_broker, stub_worker, monkeypatch):
    monkeypatch.setattr(runner, "_gauged_at", {})
    reads = []
    real = ratelimit.remaining
    monkeypatch.setattr(ratelimit, "remaining", lambda app_id: reads.append(app_id) or real(app_id))
    stub_worker.pause()
    for n in range(10):
        body = {
            "method": "flickr.test.echo",
            "params": {"n": n},
            "user_id": str(world.alpha.accounts[0].user_id),
        }
        assert world.alpha.api().post("/api/v1/flickr/rest", body, format="json").status_code == 202
    stub_worker.resume()
    run_queued_jobs(stub_broker, stub_worker)
    assert Job.objects.filter(state="completed").count() == 10
    assert len(reads) == 1


def test_the_gauge_is_read_again_after_a_second(world, stub_broker, stub_worker, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(runner, "_gauged_at", {})
    monkeypatch.setattr(runner.time, "monotonic", lambda: clock[0])
    reads = []
    monkeypatch.setattr(ratelimit, "remaining", lambda app_id: reads.append(app_id) or 3600)
    job = Job(account=world.alpha.accounts[0])
    runner._gauge_key(job)
    runner._gauge_key(job)
    clock[0] += runner.GAUGE_INTERVAL_SECONDS
    runner._gauge_key(job)
    assert len(reads) == 2
