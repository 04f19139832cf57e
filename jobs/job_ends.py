"""Telling a request that waits for a job (`?wait=`) that the job ended, instead of it polling.

The worker that records a job's end calls `announce(job_id)` once the end is committed. A
waiting request `watch`es the job: it reads the row, and while the job is unfinished sleeps
until it is told, or API_WAIT_POLL_MS at most, then reads the row again. The row stays the
truth; a lost announcement only makes the answer that much later.

- In one process (the embedded default, in-process workers) an announcement sets the waiters'
  events directly.
- With Redis (REDIS_URL), it is also PUBLISHed on one channel per deployment
  (`<CACHE_KEY_PREFIX>:job-ended`, the job id as the message). Each web process subscribes once,
  from a thread started at its first wait, and wakes its own waiters. One shared channel rather
  than one per job: a per-job SUBSCRIBE would cost each waiting request a connection of its
  own, and ids of jobs nobody waits for are dropped in the listener for a few microseconds.
- Only the ends of jobs a request waits for are PUBLISHed: their rows are `awaited` (the
  enqueue with `?wait` writes it, a status read with `?wait` sets it before its first look).
  The ends of the other jobs, most of them, cost no Redis round trip.
- While Redis is down (flickr/shared_state.py) announcing is skipped, the listener retries
  every few seconds, and waits fall back to the poll: `?wait` still answers, later.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from django.conf import settings

from flickr import shared_state

log = structlog.get_logger(__name__)

_lock = threading.Lock()
_waiters: dict[str, set[threading.Event]] = {}
# The (Redis URL, channel) the running listener thread serves; another one means start anew.
_listening: tuple[str, str] | None = None
_subscribed = threading.Event()
# The first wait of a process gives the listener this long to subscribe, so that its own job's
# end is not announced before anyone listens.
SUBSCRIBE_WAIT_SECONDS = 0.5


def announce(job_id: uuid.UUID | str, *, publish: bool = True) -> None:
    """Says that `job_id` has ended: call after the end is committed. `publish=False` (nobody
    waits for the job: its row is not `awaited`) tells only this process's own waiters."""
    _wake(str(job_id))
    if publish and _redis() is not None:
        _publish(str(job_id))


@contextmanager
def watch(job_id: uuid.UUID | str) -> Iterator[threading.Event]:
    """An event set when `job_id` is announced as ended, for as long as the block lasts. Clear
    it before each look at the row, so that an end announced meanwhile is not missed."""
    key = str(job_id)
    event = threading.Event()
    with _lock:
        _waiters.setdefault(key, set()).add(event)
    if _redis() is not None:
        _ensure_listening()
    try:
        yield event
    finally:
        with _lock:
            events = _waiters.get(key)
            if events is not None:
                events.discard(event)
                if not events:
                    del _waiters[key]


def _wake(key: str) -> None:
    with _lock:
        events = list(_waiters.get(key, ()))
    for event in events:
        event.set()


def _channel() -> str:
    return f"{settings.CACHE_KEY_PREFIX}:job-ended"


def _redis() -> tuple[str, str] | None:
    """The Redis and channel announcements travel on, or None without Redis (the cache must
    be django-redis: REDIS_URL alone is not enough)."""
    if not settings.REDIS_URL or "django_redis" not in settings.CACHES["default"]["BACKEND"]:
        return None
    return (settings.REDIS_URL, _channel())


@shared_state.or_else("job_ends", None)
def _publish(key: str) -> None:
    from django_redis import get_redis_connection

    get_redis_connection("default").publish(_channel(), key)


def _ensure_listening() -> None:
    global _listening
    wanted = _redis()
    with _lock:
        if _listening == wanted:
            return
        _listening = wanted
        _subscribed.clear()
    threading.Thread(target=_listen, args=(wanted,), name="job-ends", daemon=True).start()
    _subscribed.wait(SUBSCRIBE_WAIT_SECONDS)


def _listen(serving: tuple[str, str]) -> None:
    """Relays the channel's announcements to this process's waiters until the settings name
    another Redis or channel (tests change them); reconnects after Redis comes back."""
    from django_redis import get_redis_connection

    while _listening == serving and _redis() == serving:
        if not shared_state.available():
            time.sleep(1.0)
            continue
        pubsub = None
        try:
            pubsub = get_redis_connection("default").pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(serving[1])
            pubsub.get_message(timeout=SUBSCRIBE_WAIT_SECONDS)  # the subscription's confirmation
            _subscribed.set()
            while _listening == serving and _redis() == serving:
                message = pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    data = message["data"]
                    _wake(data.decode() if isinstance(data, bytes) else str(data))
        except shared_state.ERRORS as error:
            shared_state.failed("job_ends", error)
        except Exception:  # never let the thread die: waits would all fall back to the poll
            log.exception("job_ends_listener_failed")
            time.sleep(1.0)
        finally:
            if pubsub is not None:
                try:
                    pubsub.close()
                except Exception:  # noqa: S110 (closing a connection that broke)
                    pass
    _stop(serving)


def _stop(serving: tuple[str, str]) -> None:
    global _listening
    with _lock:
        if _listening == serving:
            _listening = None  # the next wait on Redis starts a listener again
