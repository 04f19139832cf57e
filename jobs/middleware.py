"""Dramatiq middleware for job concerns: log context per message, and the sweeper thread."""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
import structlog
from django.conf import settings
from django.db import close_old_connections

log = structlog.get_logger(__name__)


class JobContextMiddleware(dramatiq.Middleware):
    """Binds the job id and the request id of the HTTP call that enqueued it to every log line
    the worker writes while running it, and starts the sweeper and the quota dispatcher in each
    worker process (leases let one process at a time do each)."""

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        from jobs.models import last_transition

        structlog.contextvars.clear_contextvars()
        last_transition.set(None)
        structlog.contextvars.bind_contextvars(
            request_id=message.kwargs.get("request_id") or None,
            job_id=message.args[0] if message.args else None,
            queue=message.queue_name.removesuffix(".DQ"),
        )

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        structlog.contextvars.clear_contextvars()

    after_skip_message = after_process_message

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if settings.JOB_SWEEP_INTERVAL_SECONDS > 0:
            self._sweeper = Sweeper(settings.JOB_SWEEP_INTERVAL_SECONDS)
            self._sweeper.start()
        if settings.FLICKR_FAIR_QUEUEING:
            from jobs.dispatcher import DispatcherThread

            self._dispatcher = DispatcherThread(settings.FLICKR_DISPATCH_INTERVAL_MS / 1000)
            self._dispatcher.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        for thread in (getattr(self, "_sweeper", None), getattr(self, "_dispatcher", None)):
            if thread is not None:
                thread.stop()


class Sweeper(threading.Thread):
    """Runs `jobs_sweep` every few seconds. Every worker process runs one, and a lease
    (flickrhub/leases.py) lets one of them sweep per interval across all workers; the sweep
    itself would also be safe to run concurrently."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="flickrhub-sweeper", daemon=True)
        self.interval = interval
        self._stop_event = threading.Event()

    # Staged upload files are checked less often: it lists a directory (or a bucket).
    STAGED_EVERY = 20
    # Retention runs about hourly (at the default interval); each run is bounded so sweeping
    # goes on.
    PURGE_EVERY = 240
    PURGE_MAX_BATCHES = 20

    def run(self) -> None:
        from flickrhub.leases import lease_acquire
        from jobs.callbacks import deliveries_sweep
        from jobs.retention import jobs_purge
        from jobs.services import jobs_sweep
        from jobs.uploads import staged_sweep

        while not self._stop_event.wait(self.interval):
            try:
                if lease_acquire(name="jobs_sweep", seconds=self.interval):
                    jobs_sweep()
                    deliveries_sweep()
                if lease_acquire(name="staged_sweep", seconds=self.interval * self.STAGED_EVERY):
                    staged_sweep()
                # Retention: about hourly, by one worker across all of them (whichever first
                # finds the lease free — right after boot if none purged within the hour).
                if lease_acquire(name="jobs_purge", seconds=self.interval * self.PURGE_EVERY):
                    jobs_purge(max_batches=self.PURGE_MAX_BATCHES)
            except Exception:  # the sweeper must outlive a database blip
                log.exception("jobs_sweep_failed")
            finally:
                close_old_connections()

    def stop(self) -> None:
        self._stop_event.set()
