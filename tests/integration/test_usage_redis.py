"""Usage counts on the real Redis: one pipelined round trip writes every counter, with its
expiry, and the totals read them back (jobs/usage.py)."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache
from django_redis import get_redis_connection

from jobs import usage


@pytest.fixture(autouse=True)
def _on_redis() -> None:
    assert hasattr(cache, "client"), "the integration run's cache is Redis"


def test_counts_reach_redis_in_one_round_trip_with_their_expiry(monkeypatch):
    redis = get_redis_connection("default")
    sent: list[int] = []
    real_pipeline = redis.pipeline

    def counting_pipeline(*args, **kwargs):
        pipeline = real_pipeline(*args, **kwargs)
        real_execute = pipeline.execute
        pipeline.execute = lambda *a, **k: sent.append(len(pipeline.command_stack)) or real_execute(*a, **k)
        return pipeline

    monkeypatch.setattr(redis, "pipeline", counting_pipeline)
    client_id = uuid.uuid4()
    for kind in ("flickr_calls", "answered_without_flickr", "quota_waits"):
        usage.count(client_id=client_id, app_id=3, kind=kind, n=2)
    usage.count(client_id=client_id, app_id=3, kind="flickr_calls")
    usage.flush()

    assert sent == [6], "three counters, INCRBY and EXPIRE each, in one round trip"
    totals = usage.last_hour(client_id=client_id, app_ids=[3])
    assert totals[3] == {"flickr_calls": 3, "answered_without_flickr": 2, "quota_waits": 2, "rejections": 0}
    keys = list(redis.scan_iter(match=f"*usage:{client_id}:*"))
    assert len(keys) == 3
    assert all(0 < redis.ttl(key) <= 2 * 3600 for key in keys)
    redis.delete(*keys)
