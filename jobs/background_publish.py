"""Publishing an accepted job's message after its 202, from a thread of the web process.

Waiting for RabbitMQ's publisher confirm held a request thread for every enqueue (on this kind
of machine a DRF view with an INSERT and a confirmed publish answers 599 requests per second,
1,077 without the confirm). The committed row already makes the job durable — the sweeper
publishes any `queued` job that has no published mark after JOB_REPUBLISH_AFTER_SECONDS — so
while the broker is known to take messages, an enqueue hands its job to this process's
publisher thread (`offer`) and answers at once. Why no accepted job is lost or run twice:

- The thread publishes with confirms, as the request did, and notes the published mark after
  the confirm (jobs/published_marks.py).
- "Known to take messages": the last publish of this process succeeded. A process's first
  enqueue, and every enqueue after a publish failed, publishes on the request path as before
  (`published`), so an unreachable broker is still a 503 that leaves no job behind, and the
  first success hands publishing back to the thread.
- A publish that fails in the thread keeps its job (MAX_KEPT at most) and tries again every
  RETRY_SECONDS, so the jobs accepted in the moment the broker went away go out soon after it
  is back. If the process dies first, the sweeper publishes them; a second message for a job
  runs it once (the claim).
- A clean exit publishes what is left for up to EXIT_SECONDS; a process killed outright leaves
  it to the sweeper.
- `?wait` enqueues and batches publish on the request path: a caller that waits gains nothing,
  and a batch's first publish tells whether the broker takes any.
- Embedded (the in-memory broker) a publish costs microseconds: always on the request path.
  API_PUBLISH_IN_BACKGROUND=false keeps every publish on the request path with RabbitMQ too.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
from typing import TYPE_CHECKING

import dramatiq
import structlog
from django.conf import settings
from django.db import DatabaseError

from jobs import published_marks

if TYPE_CHECKING:
    from jobs.models import Job

log = structlog.get_logger(__name__)

RETRY_SECONDS = 1.0
EXIT_SECONDS = 5.0
MAX_KEPT = 100_000

_jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
_kept: list[Job] = []  # failed publishes, oldest first
_sending = threading.Lock()  # the thread's and the exit's publishes, one at a time
_lock = threading.Lock()
_thread: threading.Thread | None = None
# The last publish of this process succeeded. Starts false: the first enqueue finds out.
_healthy = False


def enabled() -> bool:
    return settings.API_PUBLISH_IN_BACKGROUND and not settings.EMBEDDED_BROKER


def offer(job: Job) -> bool:
    """Takes `job`'s message to publish from the thread, if the broker is known to take
    messages; False: publish it on the request path (and call `published` after)."""
    if not (_healthy and enabled()):
        return False
    _ensure_thread()
    _jobs.put(job)
    return True


def published() -> None:
    """A publish on the request path succeeded: the next enqueues may hand theirs over."""
    global _healthy
    _healthy = True


def pending() -> int:
    """Jobs handed over and not yet published (metrics and tests)."""
    return _jobs.qsize() + len(_kept)


def _ensure_thread() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="job-publisher", daemon=True)
            _thread.start()


def _publish(job: Job) -> None:
    from jobs.services import job_publish  # services imports this module

    job_publish(job, mark_later=True)


def _run() -> None:
    while True:
        try:
            job = _jobs.get(timeout=RETRY_SECONDS) if _kept else _jobs.get()
        except queue.Empty:
            job = None
        try:
            _send(job)
        except Exception:  # never let the thread die: what it holds would wait for the sweeper
            log.exception("job_publish_background_failed")


def _send(job: Job | None) -> bool:
    """Publishes what failed before, oldest first, then `job`; keeps them all from the first
    failure on. True if everything went out."""
    with _sending:
        return _send_locked(job)


def _send_locked(job: Job | None) -> bool:
    global _healthy
    if job is not None:
        if len(_kept) < MAX_KEPT:
            _kept.append(job)
        else:  # the sweeper publishes it (JOB_REPUBLISH_AFTER_SECONDS)
            log.warning("job_publish_left_to_sweeper", job_id=str(job.id))
    while _kept:
        try:
            _publish(_kept[0])
        except dramatiq.errors.BrokerConnectionError as exc:
            if _healthy:
                log.warning(
                    "job_publish_deferred", job_id=str(_kept[0].id), kept=len(_kept), error=type(exc).__name__
                )
            _healthy = False
            return False
        del _kept[0]
        _healthy = True
    return True


def _publish_at_exit() -> None:
    if not enabled() or not pending():
        return
    deadline = time.monotonic() + EXIT_SECONDS
    while time.monotonic() < deadline:
        try:
            job = _jobs.get_nowait()
        except queue.Empty:
            job = None
        if (job is None and not _kept) or not _send(job):
            break
    try:  # the marks of what went out now: published_marks' own exit flush may have run already
        published_marks.flush()
    except DatabaseError:
        pass  # the sweeper may send these a second message, which runs them once


atexit.register(_publish_at_exit)
