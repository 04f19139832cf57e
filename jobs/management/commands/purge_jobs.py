"""manage.py purge_jobs — delete ended jobs past their retention, now."""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.retention import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, PurgeReport, jobs_purge


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days") from None
    if days < 0:
        raise argparse.ArgumentTypeError("days must be 0 (keep forever) or more")
    return days


def _batch_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_BATCH_SIZE}")
    return size


class Command(BaseCommand):
    help = (
        "Delete completed and failed jobs older than JOB_TTL_COMPLETE_DAYS / JOB_TTL_FAIL_DAYS "
        "(0 keeps them forever), with their callback deliveries and staged files, in batches. "
        "Their status then answers 410 ERR_JOB_EXPIRED. Workers run this hourly on their own; "
        "the command is for cron, a one-off clean-up, or a --dry-run to see what would go."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )
        parser.add_argument(
            "--complete-days", type=_days, default=None, help="Override JOB_TTL_COMPLETE_DAYS for this run."
        )
        parser.add_argument(
            "--fail-days", type=_days, default=None, help="Override JOB_TTL_FAIL_DAYS for this run."
        )
        parser.add_argument(
            "--batch-size",
            type=_batch_size,
            default=DEFAULT_BATCH_SIZE,
            help=f"Jobs deleted per transaction (default {DEFAULT_BATCH_SIZE}).",
        )

    def handle(
        self,
        *args: Any,
        dry_run: bool,
        complete_days: int | None,
        fail_days: int | None,
        batch_size: int,
        **options: Any,
    ) -> None:
        # call_command() skips argparse's type checks for keyword options: check again here.
        for name, value in (("--complete-days", complete_days), ("--fail-days", fail_days)):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise CommandError(f"{name} must be 0 (keep forever) or a number of days, not {value!r}.")
        if not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}, not {batch_size!r}.")
        report = jobs_purge(
            dry_run=dry_run, complete_days=complete_days, fail_days=fail_days, batch_size=batch_size
        )
        self._print(report)

    def _print(self, report: PurgeReport) -> None:
        verb = "Would delete" if report.dry_run else "Deleted"
        for state, count in (("completed", report.completed), ("failed", report.failed)):
            days = report.ttl_days[state]
            if days:
                self.stdout.write(f"{verb} {count} {state} job(s) that ended more than {days} day(s) ago.")
            else:
                self.stdout.write(f"Kept every {state} job (its retention is 0: keep forever).")
        if not report.dry_run:
            self.stdout.write(f"Removed {report.files} staged file(s) of deleted jobs.")
        self.stdout.write(
            f"{verb} {report.markers} expired-job marker(s) older than {settings.JOB_TOMBSTONE_DAYS} day(s)."
            if settings.JOB_TOMBSTONE_DAYS
            else "Kept every expired-job marker (JOB_TOMBSTONE_DAYS is 0)."
        )
