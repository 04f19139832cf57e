"""Periodic work runs in one process at a time: a lease that one caller gets until it runs out."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from flickrhub.leases import lease_acquire
from flickrhub.models import Lease


@pytest.mark.django_db
def test_only_one_caller_gets_a_lease_until_it_runs_out():
    assert lease_acquire(name="jobs_sweep", seconds=60) is True
    assert lease_acquire(name="jobs_sweep", seconds=60) is False
    assert lease_acquire(name="staged_sweep", seconds=60) is True  # another lease is another name


@pytest.mark.django_db
def test_an_expired_lease_is_taken_over():
    assert lease_acquire(name="jobs_sweep", seconds=60)
    Lease.objects.filter(name="jobs_sweep").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert lease_acquire(name="jobs_sweep", seconds=60) is True
    assert lease_acquire(name="jobs_sweep", seconds=60) is False


@pytest.mark.django_db(transaction=True)
def test_sweepers_in_several_workers_sweep_once_per_interval_never_together(monkeypatch):
    import jobs.services
    from jobs.middleware import Sweeper

    running = 0
    overlaps = 0
    sweeps = []
    lock = threading.Lock()

    def counting_sweep(**kwargs):
        nonlocal running, overlaps
        with lock:
            running += 1
            overlaps += running > 1
            sweeps.append(time.monotonic())
        time.sleep(0.02)
        with lock:
            running -= 1
        return {}

    monkeypatch.setattr(jobs.services, "jobs_sweep", counting_sweep)
    interval = 1.0
    sweepers = [Sweeper(interval) for _ in range(4)]
    started = time.monotonic()
    for sweeper in sweepers:
        sweeper.start()
    time.sleep(3.5)
    for sweeper in sweepers:
        sweeper.stop()
    for sweeper in sweepers:
        sweeper.join(5)
    elapsed = time.monotonic() - started

    assert overlaps == 0
    # Four sweepers waking every second would sweep ~12 times; the lease lets one a second.
    assert 2 <= len(sweeps) <= elapsed / interval + 1, sweeps


def test_with_redis_the_lease_is_one_atomic_cache_add(settings, monkeypatch):
    from flickrhub import leases

    calls = []

    class RedisLike:
        def add(self, key, value, timeout):
            calls.append((key, timeout))
            return len(calls) == 1

    settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://x"}}
    monkeypatch.setattr(leases, "cache", RedisLike())
    assert leases.lease_acquire(name="jobs_sweep", seconds=15) is True
    assert leases.lease_acquire(name="jobs_sweep", seconds=15) is False
    assert calls == [("lease:jobs_sweep", 15), ("lease:jobs_sweep", 15)]


@pytest.mark.django_db
def test_when_redis_is_down_the_database_decides(settings, monkeypatch):
    from flickrhub import leases

    class RedisDown:
        def add(self, key, value, timeout):
            raise ConnectionError("Redis is not there")

    settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://x"}}
    monkeypatch.setattr(leases, "cache", RedisDown())
    assert leases.lease_acquire(name="jobs_sweep", seconds=15) is True
    assert leases.lease_acquire(name="jobs_sweep", seconds=15) is False
