"""A circuit breaker per Flickr consumer key, shared by every worker through the cache.

Closed: calls go through, and consecutive retryable failures (5xx, 429, 105, unreachable) are
counted. After BREAKER_FAILURE_THRESHOLD of them in a row — or at once on code 100, the key
disabled — the circuit opens for a cool-down (BREAKER_COOLDOWN_SECONDS, longer for 100): no
call is made and jobs wait. When the cool-down is over the circuit is half-open: one job, the
probe, makes its call while the others wait a little; a success closes the circuit, a failure
opens it again.

The state lives in the Django cache (Redis in production) in three keys per app — a failure
counter (atomic `incr`), the time the circuit reopens, and the probe's claim (atomic `add`) —
so workers on every machine see one circuit. While Redis is down (flickr/shared_state.py)
the circuit reads closed and outcomes are not counted: calls go on, paced by the local share
of the quota and retried with backoff as ever.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.core.cache import cache

from flickr.shared_state import or_else

log = structlog.get_logger(__name__)

# While a probe is out, the others look again after this long.
PROBE_WAIT_SECONDS = 2.0
# A success through a closed circuit only has to reset the failure count. A process that
# reset it this recently, and has recorded no failure since, skips that (two Redis round trips
# per call otherwise); a process resets it at once after a failure of its own.
RESET_INTERVAL_SECONDS = 1.0
_reset_at: dict[int, float] = {}
# A process that found the circuit closed lets its calls through for this long without asking
# Redis again (a round trip before every call otherwise; at 100 calls a second one in 25). A
# circuit opened meanwhile by other processes stops this one at its own next failure, which
# forgets what it saw, or this long after at most: its extra calls are the ones it already had
# in flight and those of the next quarter second, and any that succeed were worth making.
CLOSED_LOOK_SECONDS = 0.25
_closed_seen_at: dict[int, float] = {}


class State(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    wait_seconds: float = 0.0
    probe: bool = False


def _keys(app_id: int) -> tuple[str, str, str]:
    base = f"breaker:{app_id}"
    return f"{base}:failures", f"{base}:open_until", f"{base}:probe"


@or_else("breaker", State.CLOSED)
def state(app_id: int) -> State:
    open_until = cache.get(_keys(app_id)[1])
    if open_until is None:
        return State.CLOSED
    return State.OPEN if time.time() < float(open_until) else State.HALF_OPEN


@or_else("breaker", Verdict(allowed=True))
def check(app_id: int, *, job_id: str) -> Verdict:
    """May a call be made with this app's key now? A half-open circuit lets one probe through."""
    now = time.monotonic()
    if now - _closed_seen_at.get(app_id, -CLOSED_LOOK_SECONDS) < CLOSED_LOOK_SECONDS:
        return Verdict(allowed=True)
    _failures, open_key, probe_key = _keys(app_id)
    open_until = cache.get(open_key)
    if open_until is None:
        _closed_seen_at[app_id] = now
        return Verdict(allowed=True)
    remaining = float(open_until) - time.time()
    if remaining > 0:
        return Verdict(allowed=False, wait_seconds=remaining)
    if cache.add(probe_key, job_id, timeout=int(settings.FLICKR_TIMEOUT_SECONDS) + 30):
        log.info("circuit_probe", flickr_app_id=app_id)
        return Verdict(allowed=True, probe=True)
    return Verdict(allowed=False, wait_seconds=PROBE_WAIT_SECONDS)


@or_else("breaker", None)
def release_probe(app_id: int, *, job_id: str) -> None:
    """The probe did not make its call after all (it must wait for quota): let another try."""
    _failures, _open, probe_key = _keys(app_id)
    if cache.get(probe_key) == job_id:
        cache.delete(probe_key)


@or_else("breaker", None)
def record_success(app_id: int, *, through_closed: bool = False) -> None:
    """A call with this app's key got Flickr's answer. `through_closed`: the circuit was closed
    when the call was let through (it was not the half-open circuit's probe)."""
    now = time.monotonic()
    if through_closed and now - _reset_at.get(app_id, -RESET_INTERVAL_SECONDS) < RESET_INTERVAL_SECONDS:
        return
    failures_key, open_key, probe_key = _keys(app_id)
    was_open = cache.get(open_key) is not None
    cache.delete_many([failures_key, open_key, probe_key])
    _reset_at[app_id] = now
    if was_open:
        log.warning("circuit_closed", flickr_app_id=app_id)


@or_else("breaker", None)
def record_failure(app_id: int, *, key_disabled: bool = False) -> None:
    """A retryable failure (or, with `key_disabled`, Flickr's code 100) for this app's key."""
    _reset_at.pop(app_id, None)
    _closed_seen_at.pop(app_id, None)
    failures_key, open_key, probe_key = _keys(app_id)
    cache.add(failures_key, 0, timeout=None)
    try:
        failures = cache.incr(failures_key)
    except ValueError:  # evicted between add and incr
        cache.set(failures_key, 1, timeout=None)
        failures = 1
    if key_disabled or failures >= settings.BREAKER_FAILURE_THRESHOLD:
        cooldown = (
            settings.BREAKER_KEY_DISABLED_COOLDOWN_SECONDS
            if key_disabled
            else settings.BREAKER_COOLDOWN_SECONDS
        )
        opening = cache.get(open_key) is None or cache.get(probe_key) is not None
        cache.set(open_key, time.time() + cooldown, timeout=int(cooldown) + 3600)
        cache.delete(probe_key)
        if opening:
            log.warning(
                "circuit_opened",
                flickr_app_id=app_id,
                consecutive_failures=failures,
                key_disabled=key_disabled,
                cooldown_s=cooldown,
            )


@or_else("breaker", None)
def reset(app_id: int) -> None:
    _reset_at.pop(app_id, None)
    _closed_seen_at.pop(app_id, None)
    cache.delete_many(list(_keys(app_id)))
