"""The quota limiter: one budget per Flickr consumer key, shared by every worker.

Flickr allows a key about 3,600 calls an hour across all of its users (FLICKR-API.md §4) and
answers more with HTTP 429 — or disables the key. The hub spends the budget evenly: calls are
spaced `3600 / FLICKR_QUOTA_PER_HOUR` seconds apart (the generic cell rate algorithm), with a
small burst allowance, never "3,600 in the first minute".

A call that finds no budget *reserves* the next free slot and is told how long to wait; the job
waits (delayed, not failed) and runs at its slot without asking again. Reserving, rather than
asking again later, keeps a backlog in order and spares the database and broker a storm of
jobs polling for budget.

The state is one number per key — the theoretical arrival time of the next call — kept in Redis
and updated by a Lua script, so every worker on every machine shares it, and Redis's clock is
the one clock. Without Redis (the embedded default, one process) it lives in process memory.

While Redis is down (flickr/shared_state.py) each worker process falls back to a budget of its
own in memory: the key's quota divided by FLICKR_QUOTA_LOCAL_SHARE, the number of processes
expected to call Flickr with it. Slower than the shared budget, but never over the quota as
long as no more processes than that are calling.

Hand-written rather than a library: the limiters on PyPI answer "allowed or not", while the
hub needs "reserve the next slot and say when", which is the part that keeps the quota full
without polling.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from django.conf import settings

from flickr import shared_state

_GCRA_RESERVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
local next_tat = tat + interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil((next_tat - now) * 1000) + 60000)
return tostring(wait)
"""

_GCRA_PEEK = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
return tostring(tat - now)
"""


def _interval() -> float:
    return 3600.0 / max(1, settings.FLICKR_QUOTA_PER_HOUR)


def _tolerance() -> float:
    return max(0, settings.FLICKR_QUOTA_BURST) * _interval()


class _LocalBackend:
    """The embedded default: one process, so process memory is shared enough. As the fallback
    of a worker that cannot reach Redis, `shared` says how many processes split the quota."""

    def __init__(self, *, shared: bool = False) -> None:
        self._lock = threading.Lock()
        self._tat: dict[str, float] = {}
        self._shared = shared

    def _interval(self) -> float:
        share = max(1, settings.FLICKR_QUOTA_LOCAL_SHARE) if self._shared else 1
        return _interval() * share

    def reserve(self, key: str) -> float:
        now = time.monotonic()
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            wait = max(0.0, tat - _tolerance() - now)
            self._tat[key] = tat + self._interval()
        return wait

    def backlog(self, key: str) -> float:
        now = time.monotonic()
        with self._lock:
            return max(0.0, self._tat.get(key, now) - now)

    def reset(self) -> None:
        with self._lock:
            self._tat.clear()


class _RedisBackend:
    def __init__(self) -> None:
        from django_redis import get_redis_connection

        self._redis: Any = get_redis_connection("default")
        self._reserve = self._redis.register_script(_GCRA_RESERVE)
        self._peek = self._redis.register_script(_GCRA_PEEK)
        self.fallback = _LocalBackend(shared=True)

    def reserve(self, key: str) -> float:
        if shared_state.available():
            try:
                return float(self._reserve(keys=[key], args=[repr(_interval()), repr(_tolerance())]))
            except shared_state.ERRORS as error:
                shared_state.failed("quota", error)
        return self.fallback.reserve(key)

    def backlog(self, key: str) -> float:
        if shared_state.available():
            try:
                return float(self._peek(keys=[key]))
            except shared_state.ERRORS as error:
                shared_state.failed("quota", error)
        return self.fallback.backlog(key)

    def reset(self) -> None:
        self.fallback.reset()
        for name in self._redis.scan_iter(match=f"{settings.CACHE_KEY_PREFIX}:quota:*"):
            self._redis.delete(name)


_backend: _LocalBackend | _RedisBackend | None = None
_backend_lock = threading.Lock()


def _get_backend() -> _LocalBackend | _RedisBackend:
    global _backend
    with _backend_lock:
        if _backend is None:
            _backend = _RedisBackend() if settings.REDIS_URL else _LocalBackend()
        return _backend


def _key(app_id: int) -> str:
    # The app's row id, not its consumer key: nothing about the key lands in Redis.
    return f"{settings.CACHE_KEY_PREFIX}:quota:{app_id}"


def reserve(app_id: int) -> float:
    """Takes the next call slot of a consumer key; returns how many seconds until it (0: now)."""
    return _get_backend().reserve(_key(app_id))


def slot_tolerance_seconds() -> float:
    """How late a job may be for its reserved slot and still use it. Later than this, the
    calls of several late jobs would land together and overrun Flickr's window."""
    return max(1, settings.FLICKR_QUOTA_BURST) * _interval()


def backlog_seconds(app_id: int) -> float:
    """How far ahead the key's slots are already reserved (0: budget available now)."""
    return _get_backend().backlog(_key(app_id))


def remaining(app_id: int) -> int:
    """Calls of the coming hour not yet spoken for: the hourly quota less the slots already
    reserved ahead of now."""
    reserved = backlog_seconds(app_id) / _interval()
    return max(0, settings.FLICKR_QUOTA_PER_HOUR - math.ceil(reserved))


def reset() -> None:
    """Forgets every reservation (tests; an operator after changing the quota)."""
    _get_backend().reset()
