"""Worker processes looking after themselves: heartbeats, the attempt log, and a clean stop.

`WorkerOpsMiddleware` runs in every Dramatiq worker process (and the embedded one):

- a heartbeat thread writes the process's row in `WorkerHeartbeat` every
  WORKER_HEARTBEAT_SECONDS (which queues, how many threads, how many jobs in hand), and touches
  WORKER_HEARTBEAT_FILE if set, for a container health check that needs no database;
- after each message that ran an attempt of a job, it records the attempt (outcome, error,
  timings, worker) for the admin's job history. The rows are written in batches, one INSERT
  about every ATTEMPTS_FLUSH_SECONDS from a background thread, not a statement and commit per
  job; a clean stop writes what is left, so only a process killed outright loses its last
  half second of history (the jobs' own rows, the truth, are written at once as ever);
- on SIGTERM Dramatiq stops its worker threads taking messages, waits for the jobs in hand up to
  `--worker-shutdown-timeout` (WORKER_SHUTDOWN_TIMEOUT_MS), hands prefetched messages back to
  the queue and closes its channels, so RabbitMQ redelivers anything unfinished; this middleware
  marks the heartbeat `stopping`, logs what was still in hand, and removes the row at the end.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dramatiq
import structlog
from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections
from django.utils import timezone

from flickrhub.batching import Batch

log = structlog.get_logger(__name__)

ATTEMPTS_FLUSH_SECONDS = 0.5


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class WorkerOpsMiddleware(dramatiq.Middleware):
    def __init__(self) -> None:
        self._in_progress: dict[str, float] = {}  # message id -> monotonic start
        self._lock = threading.Lock()
        self._heartbeat: Heartbeat | None = None

    # --- messages ------------------------------------------------------------------------------

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        with self._lock:
            self._in_progress[message.message_id] = time.monotonic()

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        with self._lock:
            started = self._in_progress.pop(message.message_id, None)
        # The runner binds job_id and attempt once it has claimed the job; a message that found
        # its job not claimable ran no attempt. (After-hooks run in reverse order, so the
        # request context is still bound here.)
        context = structlog.contextvars.get_contextvars()
        if context.get("attempt") is None or not context.get("job_id"):
            return
        try:
            record_attempt(
                job_id=str(context["job_id"]),
                number=int(context["attempt"]),
                duration_ms=round((time.monotonic() - started) * 1000, 1) if started else None,
                exception=exception,
            )
        except Exception:  # the history is a convenience; the job's own row is the truth
            log.warning("job_attempt_not_recorded", exc_info=True)

    after_skip_message = after_process_message

    def in_progress(self) -> int:
        with self._lock:
            return len(self._in_progress)

    # --- the process ---------------------------------------------------------------------------

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if settings.WORKER_HEARTBEAT_SECONDS <= 0:
            return

        def queues() -> list[str]:
            # Read at every beat: a worker starts consuming a queue when its first actor is
            # declared, which in the embedded server may be after the worker started.
            return sorted({q.removesuffix(".DQ") for q in list(getattr(worker, "consumers", {}))})

        self._heartbeat = Heartbeat(
            interval=settings.WORKER_HEARTBEAT_SECONDS,
            queues=queues,
            threads=len(getattr(worker, "workers", [])),
            in_progress=self.in_progress,
        )
        self._heartbeat.beat()  # at once, so the worker shows up as soon as it consumes
        self._heartbeat.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        in_hand = self.in_progress()
        log.info(
            "worker_stopping",
            jobs_in_hand=in_hand,
            wait_ms=settings.WORKER_SHUTDOWN_TIMEOUT_MS,
            message="No new messages are taken; jobs in hand get the wait to finish, anything "
            "unfinished goes back to its queue.",
        )
        if self._heartbeat is not None:
            self._heartbeat.stopping = True
            self._heartbeat.beat()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        left = self.in_progress()
        if left:
            log.warning(
                "worker_stopped_with_jobs_in_hand",
                jobs=left,
                message="These messages were not acknowledged; the broker hands them to another "
                "worker, which takes the jobs over.",
            )
        else:
            log.info("worker_stopped")
        flush_attempts()
        if self._heartbeat is not None:
            self._heartbeat.stop()


def record_attempt(*, job_id: str, number: int, duration_ms: float | None, exception: Any) -> None:
    from flickrhub.models import AttemptOutcome, JobAttempt
    from jobs.models import Job, JobState, last_transition

    seen = last_transition.get()
    row: Mapping[str, Any] | None
    if exception is None and seen is not None and seen.job_id == job_id:
        # The run's own transition says how the attempt ended; no need to read the row back.
        row = {
            "state": seen.state,
            "error": seen.error,
            "started_at": seen.started_at,
            "attempts": number - 1 if seen.gave_back else number,
        }
    else:
        row = Job.objects.filter(pk=job_id).values("state", "error", "started_at", "attempts").first()
    if row is None:
        return
    if exception is not None:
        outcome, error = AttemptOutcome.ERROR, {"message": f"{type(exception).__name__}: {exception}"[:500]}
    elif row["state"] == JobState.RUNNING or row["attempts"] != number:
        outcome, error = AttemptOutcome.SUPERSEDED, None  # another run holds the job now
    else:
        outcome = (
            AttemptOutcome(row["state"]) if row["state"] in AttemptOutcome.values else AttemptOutcome.ERROR
        )
        error = row["error"] if outcome in (AttemptOutcome.FAILED, AttemptOutcome.RETRYING) else None
    attempt = JobAttempt(
        job_id=job_id,
        number=number,
        outcome=outcome,
        error=error,
        started_at=row["started_at"],
        finished_at=timezone.now(),
        duration_ms=duration_ms,
        worker=worker_id(),
    )
    attempts.note(attempt)


def _write_attempts(batch: Batch[Any], items: list[Any]) -> int:
    from flickrhub import sqlrows
    from flickrhub.models import JobAttempt

    try:
        JobAttempt.objects.bulk_create(items)
        return len(items)
    except IntegrityError:
        # A job deleted since its attempt (retention, a purge): write the others one by one.
        written = 0
        for attempt in items:
            try:
                sqlrows.insert(attempt)
                written += 1
            except IntegrityError:
                pass
        return written
    except DatabaseError as exc:
        log.warning("job_attempts_deferred", count=len(items), error=type(exc).__name__)
        batch.put_back(items)
        return 0


attempts: Batch[Any] = Batch(
    "attempt-log", every=ATTEMPTS_FLUSH_SECONDS, write=_write_attempts, max_pending=10_000, database=True
)
# Writes the attempts recorded so far; returns how many rows it wrote.
flush_attempts = attempts.flush


class Heartbeat(threading.Thread):
    def __init__(
        self, *, interval: float, queues: Callable[[], list[str]], threads: int, in_progress: Any
    ) -> None:
        super().__init__(name="flickrhub-heartbeat", daemon=True)
        self.interval = interval
        self.queues = queues
        self.threads = threads
        self.in_progress = in_progress
        self.stopping = False
        self.started_at = timezone.now()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        from flickrhub.models import WorkerHeartbeat

        try:
            WorkerHeartbeat.objects.update_or_create(
                worker_id=worker_id(),
                defaults={
                    "hostname": socket.gethostname(),
                    "pid": os.getpid(),
                    "queues": self.queues(),
                    "threads": self.threads,
                    "in_progress": self.in_progress(),
                    "stopping": self.stopping,
                    "started_at": self.started_at,
                    "last_seen": timezone.now(),
                },
            )
        except Exception:  # a database blip must not kill the heartbeat
            log.warning("worker_heartbeat_failed", exc_info=True)
        finally:
            close_old_connections()
        if settings.WORKER_HEARTBEAT_FILE:
            try:
                Path(settings.WORKER_HEARTBEAT_FILE).touch()
            except OSError:
                log.warning("worker_heartbeat_file_failed", path=settings.WORKER_HEARTBEAT_FILE)

    def stop(self) -> None:
        from flickrhub.models import WorkerHeartbeat

        self._stop_event.set()
        try:
            WorkerHeartbeat.objects.filter(worker_id=worker_id()).delete()
        except Exception:
            log.warning("worker_heartbeat_not_removed", exc_info=True)
