"""When the state the workers share (Redis) cannot be reached.

The quota limiter, the circuit breakers, the response cache and coalescing keep their state in
Redis so that every worker sees the same. None of them is worth failing a job over: while Redis
is down each falls back to something local and safe (a per-process share of the quota, a closed
circuit, a cache miss, no coalescing), and jobs go on. A failed call to Redis marks it down for
this process for `RETRY_SECONDS`, so jobs do not each wait for a connect timeout; after that the
next call tries it again. `redis_unavailable` is logged at most once per `LOG_EVERY_SECONDS`.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import structlog

log = structlog.get_logger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

RETRY_SECONDS = 5.0
LOG_EVERY_SECONDS = 60.0

try:
    from django_redis.exceptions import ConnectionInterrupted
    from redis.exceptions import RedisError

    ERRORS: tuple[type[BaseException], ...] = (ConnectionInterrupted, RedisError, OSError)
except ImportError:  # pragma: no cover (django-redis is a base requirement)
    ERRORS = (OSError,)

_lock = threading.Lock()
_down_until = 0.0
_last_logged = -LOG_EVERY_SECONDS
_failures = 0


def available() -> bool:
    """False while a recent failure says Redis is down: use the local fallback straight away."""
    return time.monotonic() >= _down_until


def failed(component: str, error: BaseException) -> None:
    """Records that `component` could not reach Redis and will use its fallback."""
    global _down_until, _last_logged, _failures
    now = time.monotonic()
    with _lock:
        _down_until = now + RETRY_SECONDS
        _failures += 1
        if now - _last_logged < LOG_EVERY_SECONDS:
            return
        _last_logged = now
        failures, _failures = _failures, 0
    log.warning(
        "redis_unavailable",
        component=component,
        error=type(error).__name__,
        failures=failures,
        fallback="local quota share, closed circuit, no cache, no coalescing",
        retry_in_s=RETRY_SECONDS,
    )


def or_else(component: str, default: Any) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorates a function that uses Redis: while Redis is down it answers `default` (of the
    function's return type)."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            if not available():
                return default
            try:
                return function(*args, **kwargs)
            except ERRORS as error:
                failed(component, error)
                return default

        return guarded

    return decorate


def reset() -> None:
    """Forgets a recorded outage (tests)."""
    global _down_until, _last_logged, _failures
    with _lock:
        _down_until, _last_logged, _failures = 0.0, -LOG_EVERY_SECONDS, 0
