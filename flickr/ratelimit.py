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
from dataclasses import dataclass
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

# Fair queueing (jobs/dispatcher.py): take the key's next slot — and, for a client capped to a
# share of the key, the client's own next slot — only if it is at most ARGV[5] seconds away.
# Returns the wait, or -1 when the key has no slot that soon, -2 when only the client's cap
# stands in the way. A call at time t moves each budget's theoretical arrival time to
# max(tat, t) + interval (GCRA).
_GCRA_ACQUIRE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local client_interval = tonumber(ARGV[3])
local client_tolerance = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local wait = math.max(0, tat - tolerance - now)
if wait > max_wait then return '-1' end
local client_tat = 0
if client_interval > 0 then
  client_tat = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), now)
  wait = math.max(wait, client_tat - client_tolerance - now)
  if wait > max_wait then return '-2' end
end
local at = now + wait
local next_tat = math.max(tat, at) + interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil((next_tat - now) * 1000) + 60000)
if client_interval > 0 then
  local next_client = math.max(client_tat, at) + client_interval
  redis.call('SET', KEYS[2], tostring(next_client), 'PX', math.ceil((next_client - now) * 1000) + 60000)
end
return tostring(wait)
"""

_GCRA_PEEK = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
return tostring(tat - now)
"""


def quota_per_hour(app_id: int) -> int:
    """The key's calls per hour: its own (admin: Flickr apps → quota per hour), else
    FLICKR_QUOTA_PER_HOUR. Looked up at most every 30 s per process."""
    now = time.monotonic()
    cached = _quota_cache.get(app_id)
    if cached is None or cached[1] < now:
        from accounts.models import FlickrApp

        own = FlickrApp.objects.filter(pk=app_id).values_list("quota_per_hour", flat=True).first()
        cached = _quota_cache[app_id] = (own, now + 30)
    return max(1, cached[0] or settings.FLICKR_QUOTA_PER_HOUR)


_quota_cache: dict[int, tuple[int | None, float]] = {}


def _burst() -> int:
    return max(0, settings.FLICKR_QUOTA_BURST)


@dataclass(frozen=True)
class _Pace:
    """A key's spacing of calls and its burst allowance, in seconds."""

    interval: float
    tolerance: float

    @classmethod
    def of(cls, app_id: int) -> _Pace:
        interval = 3600.0 / quota_per_hour(app_id)
        return cls(interval, _burst() * interval)


# What `acquire` answers instead of a wait.
NO_SLOT = -1.0
CLIENT_CAPPED = -2.0


class _LocalBackend:
    """The embedded default: one process, so process memory is shared enough. As the fallback
    of a worker that cannot reach Redis, `shared` says how many processes split the quota."""

    def __init__(self, *, shared: bool = False) -> None:
        self._lock = threading.Lock()
        self._tat: dict[str, float] = {}
        self._shared = shared

    def _share(self) -> int:
        return max(1, settings.FLICKR_QUOTA_LOCAL_SHARE) if self._shared else 1

    def reserve(self, key: str, pace: _Pace) -> float:
        now = time.monotonic()
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            wait = max(0.0, tat - pace.tolerance - now)
            self._tat[key] = tat + pace.interval * self._share()
        return wait

    def acquire(
        self, key: str, pace: _Pace, client_key: str, client_interval: float, max_wait: float
    ) -> float:
        now = time.monotonic()
        client_interval *= self._share()  # a fallback's share of the cap too
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            wait = max(0.0, tat - pace.tolerance - now)
            if wait > max_wait:
                return NO_SLOT
            client_tat = 0.0
            if client_interval > 0:
                client_tat = max(self._tat.get(client_key, now), now)
                wait = max(wait, client_tat - _burst() * client_interval - now)
                if wait > max_wait:
                    return CLIENT_CAPPED
            at = now + wait
            self._tat[key] = max(tat, at) + pace.interval * self._share()
            if client_interval > 0:
                self._tat[client_key] = max(client_tat, at) + client_interval
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
        self._acquire = self._redis.register_script(_GCRA_ACQUIRE)
        self._peek = self._redis.register_script(_GCRA_PEEK)
        self.fallback = _LocalBackend(shared=True)

    def reserve(self, key: str, pace: _Pace) -> float:
        if shared_state.available():
            try:
                return float(self._reserve(keys=[key], args=[repr(pace.interval), repr(pace.tolerance)]))
            except shared_state.ERRORS as error:
                shared_state.failed("quota", error)
        return self.fallback.reserve(key, pace)

    def acquire(
        self, key: str, pace: _Pace, client_key: str, client_interval: float, max_wait: float
    ) -> float:
        if shared_state.available():
            try:
                args = [pace.interval, pace.tolerance, client_interval, _burst() * client_interval, max_wait]
                return float(self._acquire(keys=[key, client_key], args=[repr(a) for a in args]))
            except shared_state.ERRORS as error:
                shared_state.failed("quota", error)
        return self.fallback.acquire(key, pace, client_key, client_interval, max_wait)

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
    return _get_backend().reserve(_key(app_id), _Pace.of(app_id))


def acquire(
    app_id: int, *, client_id: str | None = None, max_percent: int | None = None, max_wait: float
) -> float:
    """Takes the key's next call slot if it is at most `max_wait` seconds away, and returns the
    wait; NO_SLOT when there is none that soon. With `max_percent`, the client's own budget —
    that share of the key's quota — must have a slot as well, else CLIENT_CAPPED; nothing is
    taken when either is refused."""
    pace = _Pace.of(app_id)
    client_interval = 0.0
    if client_id is not None and max_percent is not None and max_percent < 100:
        client_interval = pace.interval * 100 / max(1, max_percent)
    client_key = f"{_key(app_id)}:client:{client_id}"
    return _get_backend().acquire(_key(app_id), pace, client_key, client_interval, max_wait)


def slot_tolerance_seconds(app_id: int) -> float:
    """How late a job may be for its reserved slot and still use it. Later than this, the
    calls of several late jobs would land together and overrun Flickr's window."""
    return max(1, settings.FLICKR_QUOTA_BURST) * _Pace.of(app_id).interval


def backlog_seconds(app_id: int) -> float:
    """How far ahead the key's slots are already reserved (0: budget available now)."""
    return _get_backend().backlog(_key(app_id))


def next_slot_seconds(app_id: int) -> float:
    """How long until the key has a free slot (0: now)."""
    return max(0.0, backlog_seconds(app_id) - _Pace.of(app_id).tolerance)


def free_slots(app_id: int, *, within: float, first_within: float) -> int:
    """How many calls could start within `within` seconds from now without waiting for a slot:
    the burst allowance not yet spent and the slots of that time; 0 when the next free slot is
    more than `first_within` seconds away (the slots ahead are taken). One read of the limiter."""
    pace = _Pace.of(app_id)
    next_free = backlog_seconds(app_id) - pace.tolerance
    if next_free > first_within:
        return 0
    return math.floor((within - next_free) / pace.interval) + 1


def remaining(app_id: int) -> int:
    """Calls of the coming hour not yet spoken for: the hourly quota less the slots already
    reserved ahead of now."""
    reserved = backlog_seconds(app_id) / _Pace.of(app_id).interval
    return max(0, quota_per_hour(app_id) - math.ceil(reserved))


def reset() -> None:
    """Forgets every reservation (tests; an operator after changing the quota)."""
    _quota_cache.clear()
    _get_backend().reset()
