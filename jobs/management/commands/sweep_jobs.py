"""manage.py sweep_jobs — publish again any accepted job no message will deliver."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from jobs.callbacks import deliveries_sweep
from jobs.services import jobs_sweep
from jobs.uploads import staged_sweep


class Command(BaseCommand):
    help = (
        "Re-publish jobs that were committed but never published, retries whose time has come, "
        "and running jobs whose worker died, and the same for callback deliveries. Workers run "
        "this on their own every JOB_SWEEP_INTERVAL_SECONDS; the command is for cron or a "
        "one-off check."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        counts = jobs_sweep()
        self.stdout.write(
            "Re-published: {queued} never-published, {retrying} due retries, "
            "{running} abandoned running jobs.".format(**counts)
        )
        self.stdout.write(f"Removed {staged_sweep()} staged upload files whose job is gone or over.")
        callbacks = deliveries_sweep()
        self.stdout.write(
            "Callbacks: published {unpublished} waiting, {abandoned} abandoned mid-try; "
            "scheduled {unscheduled} missing.".format(**callbacks)
        )
