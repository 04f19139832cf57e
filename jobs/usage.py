"""Each API client's use of the Flickr quota over the last hour: what `GET /api/v1/usage` and
the admin show.

Counted per client, consumer key and minute in the cache (Redis in production, so every
process adds to the same counters; process memory in the embedded default, which is one
process): the calls made to Flickr, the calls answered without Flickr (the cache, an identical
call in flight), the jobs that had to wait for quota, and the enqueues refused by the in-flight
cap. Counters are a few integers that expire after two hours, so nothing accumulates. A Redis
outage loses counts, never a job.

A count is not a Redis call of its own on the job's path: each process adds its counts up in
memory and a background thread writes them all about every FLUSH_SECONDS, in one round trip.
Reading the totals writes this process's first, so one process always sees its own counts; the
others' arrive within FLUSH_SECONDS. A process killed outright loses at most its last second of
counts (a clean stop writes them).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import structlog
from django.core.cache import cache
from django.db.models import Count

from accounts.models import ApiClient, FlickrApp
from flickr import ratelimit, shared_state
from flickrhub.batching import Batch

log = structlog.get_logger(__name__)

KINDS = ("flickr_calls", "answered_without_flickr", "quota_waits", "rejections")
WINDOW_MINUTES = 60
_TTL_SECONDS = 2 * 3600
_COUNT_ERRORS: tuple[type[BaseException], ...] = (ValueError, *shared_state.ERRORS)
# Rejections happen before a job, and so an account and its key, exists.
NO_KEY = 0


def _key(client_id: uuid.UUID | str, app_id: int, minute: int, kind: str) -> str:
    return f"usage:{client_id}:{app_id}:{minute}:{kind}"


FLUSH_SECONDS = 1.0


def _write(batch: Batch[tuple[str, int]], items: list[tuple[str, int]]) -> int:
    counts: Counter[str] = Counter()
    for key, n in items:
        counts[key] += n
    try:
        if hasattr(cache, "client"):  # django-redis: every counter in one pipelined round trip
            redis = cache.client.get_client(write=True)
            pipeline = redis.pipeline(transaction=False)
            for key, n in counts.items():
                name = cache.make_key(key)
                pipeline.incrby(name, n)
                pipeline.expire(name, _TTL_SECONDS)
            pipeline.execute()
        else:  # the embedded default's local memory
            for key, n in counts.items():
                if not cache.add(key, n, timeout=_TTL_SECONDS):
                    cache.incr(key, n)
    except _COUNT_ERRORS as exc:  # ValueError: a counter expired between add and incr
        log.debug("usage_not_counted", counters=len(counts), error=type(exc).__name__)
        return 0
    return len(counts)


counts: Batch[tuple[str, int]] = Batch(
    "usage-counts", every=FLUSH_SECONDS, write=_write, max_pending=100_000, database=False
)
# Writes this process's counts to the cache now.
flush = counts.flush
discard = counts.discard


def count(*, client_id: uuid.UUID | str, app_id: int | None, kind: str, n: int = 1) -> None:
    """Adds `n` to this minute's counter of `kind`; written to the cache within FLUSH_SECONDS."""
    assert kind in KINDS, kind
    counts.note((_key(client_id, app_id or NO_KEY, int(time.time() // 60), kind), n))


def last_hour(*, client_id: uuid.UUID | str, app_ids: list[int]) -> dict[int, dict[str, int]]:
    """Totals of the last WINDOW_MINUTES minutes per consumer key (NO_KEY: rejections)."""
    flush()
    now = int(time.time() // 60)
    keys = {
        _key(client_id, app_id, minute, kind): (app_id, kind)
        for app_id in {*app_ids, NO_KEY}
        for minute in range(now - WINDOW_MINUTES + 1, now + 1)
        for kind in KINDS
    }
    totals: dict[int, dict[str, int]] = {a: dict.fromkeys(KINDS, 0) for a in {*app_ids, NO_KEY}}
    try:
        found: dict[str, Any] = cache.get_many(list(keys))
    except shared_state.ERRORS as exc:
        log.warning("usage_unavailable", error=type(exc).__name__)
        found = {}
    for key, value in found.items():
        app_id, kind = keys[key]
        totals[app_id][kind] += int(value)
    return totals


def client_usage(client: ApiClient) -> dict[str, Any]:
    """A client's use of each Flickr key it has accounts on, over the last hour, and its jobs
    waiting for quota now: what `GET /api/v1/usage` answers and the admin shows."""
    from jobs.models import ACTIVE_STATES, Job

    apps = {
        app.pk: app for app in FlickrApp.objects.filter(accounts__client=client).distinct().order_by("pk")
    }
    totals = last_hour(client_id=client.pk, app_ids=list(apps))
    waiting = dict(
        Job.objects.parked()
        .filter(client=client)
        .values_list("account__app_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    keys = []
    for app_id, app in apps.items():
        counted = totals[app_id]
        quota = ratelimit.quota_per_hour(app_id)
        keys.append(
            {
                "flickr_app": app.name,
                "quota_per_hour": quota,
                **{kind: counted[kind] for kind in KINDS if kind != "rejections"},
                "share_of_quota_percent": round(100 * counted["flickr_calls"] / quota, 2),
                "waiting_for_quota_now": waiting.get(app_id, 0),
            }
        )
    return {
        "window_seconds": WINDOW_MINUTES * 60,
        "quota_weight": client.quota_weight,
        "quota_max_percent": client.quota_max_percent,
        **{kind: sum(t[kind] for t in totals.values()) for kind in KINDS},
        "waiting_for_quota_now": sum(waiting.values()),
        "unfinished_jobs": Job.objects.filter(client=client, state__in=ACTIVE_STATES).count(),
        "keys": keys,
    }
