"""Recording, off the request path, that an accepted job's message was published.

`published_at` exists for one reader: the sweeper, which publishes again the `queued` jobs
that have none after JOB_REPUBLISH_AFTER_SECONDS (the process died between commit and publish).
Writing it at once cost every enqueue a second statement and commit after the broker's
confirm. Here the web process notes the ids and sets them all in one UPDATE about every
FLUSH_SECONDS, from a background thread. Why that keeps every promise:

- A crash between commit and publish leaves no mark, as before: the sweeper publishes the job.
- A crash after the confirm but before the flush also leaves no mark: if the job is still
  `queued` after JOB_REPUBLISH_AFTER_SECONDS, the sweeper sends a second message, and the claim
  runs the job once. Only jobs accepted in the last second of a dying process can get one.
- A job a worker has already claimed needs no mark (its message obviously arrived), and must
  not get one: a retry or a wait it recorded since (published_at NULL, for the sweeper to find)
  would be hidden. So the UPDATE only touches rows still `queued` and never started.
- A failed flush keeps its ids for the next one (at most MAX_PENDING); ids dropped beyond that
  only risk the harmless second message above.
"""

from __future__ import annotations

import atexit
import threading
import uuid

import structlog
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

log = structlog.get_logger(__name__)

FLUSH_SECONDS = 0.5
MAX_PENDING = 100_000
_BATCH = 1000

_lock = threading.Lock()
_pending: list[uuid.UUID] = []
_wakeup = threading.Event()
_thread: threading.Thread | None = None
# The thread runs while this is true. Unit tests turn it off and call flush() themselves.
background = True


def note(job_id: uuid.UUID) -> None:
    """Records, soon, that `job_id`'s message was confirmed by the broker."""
    global _thread
    with _lock:
        if len(_pending) < MAX_PENDING:
            _pending.append(job_id)
        if background and (_thread is None or not _thread.is_alive()):
            _thread = threading.Thread(target=_run, name="published-marks", daemon=True)
            _thread.start()


def flush() -> int:
    """Writes the noted marks now; returns how many rows it marked."""
    from jobs.models import Job, JobState  # models import settings-dependent apps

    with _lock:
        ids = _pending[:]
        _pending.clear()
    marked = 0
    now = timezone.now()
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        try:
            marked += Job.objects.filter(
                pk__in=chunk, state=JobState.QUEUED, started_at__isnull=True, published_at__isnull=True
            ).update(published_at=now)
        except DatabaseError as exc:
            log.warning("job_publish_marks_deferred", count=len(ids) - start, error=type(exc).__name__)
            with _lock:
                _pending[:0] = ids[start:][: max(0, MAX_PENDING - len(_pending))]
            break
    return marked


def discard() -> None:
    """Forgets the noted marks (tests)."""
    with _lock:
        _pending.clear()


def _run() -> None:
    while background:
        _wakeup.wait(FLUSH_SECONDS)
        _wakeup.clear()
        try:
            flush()
        except Exception:  # never let the thread die: the next flush tries again
            log.exception("job_publish_marks_failed")
        finally:
            # This thread's connection is its own: give it back as a request would.
            if connection.settings_dict.get("OPTIONS", {}).get("pool"):
                connection.close()
            else:
                close_old_connections()


@atexit.register
def _flush_at_exit() -> None:
    # A clean shutdown (SIGTERM to gunicorn) leaves no job to be published twice.
    if _pending:
        try:
            flush()
        except Exception:  # noqa: S110 (the interpreter is going away; the sweeper copes)
            pass
