"""Usage counts (jobs/usage.py) cost the job's path no cache call: they add up in memory and are
written together, and whoever reads the totals sees this process's counts at once."""

from __future__ import annotations

import uuid

from django.core.cache import cache

from jobs import usage


def test_counts_are_written_together_and_read_back_at_once(monkeypatch):
    writes: list[str] = []
    real_add = cache.add
    monkeypatch.setattr(cache, "add", lambda key, *a, **k: writes.append(key) or real_add(key, *a, **k))
    client_id = uuid.uuid4()
    for _ in range(3):
        usage.count(client_id=client_id, app_id=7, kind="flickr_calls")
    usage.count(client_id=client_id, app_id=7, kind="quota_waits", n=2)
    usage.count(client_id=client_id, app_id=None, kind="rejections", n=5)
    assert writes == [], "counting wrote nothing yet"

    totals = usage.last_hour(client_id=client_id, app_ids=[7])
    assert totals[7] == {"flickr_calls": 3, "answered_without_flickr": 0, "quota_waits": 2, "rejections": 0}
    assert totals[usage.NO_KEY]["rejections"] == 5
    assert len(writes) == 3, "one write per counter, not per count"

    usage.count(client_id=client_id, app_id=7, kind="flickr_calls")
    usage.flush()
    assert usage.last_hour(client_id=client_id, app_ids=[7])[7]["flickr_calls"] == 4


def test_another_clients_counts_are_not_mixed_in():
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    usage.count(client_id=theirs, app_id=7, kind="flickr_calls", n=9)
    usage.count(client_id=mine, app_id=7, kind="flickr_calls")
    assert usage.last_hour(client_id=mine, app_ids=[7])[7]["flickr_calls"] == 1
