"""Retention: ended jobs are deleted JOB_TTL_COMPLETE_DAYS / JOB_TTL_FAIL_DAYS after they
ended (0 keeps them forever), with their callback deliveries and any staged file. Each leaves a
`PurgedJob` marker, so its status answers 410 `ERR_JOB_EXPIRED` rather than 404, until the
marker itself is JOB_TOMBSTONE_DAYS old.

Deletion goes in batches, each one transaction that writes the markers and deletes the rows it
has locked: several workers purging at once (each worker's sweeper runs it) share the work
instead of waiting on each other, and a purge stopped halfway leaves only whole batches done.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import ApiClient
from jobs import uploads
from jobs.models import Job, JobState
from jobs.models_callbacks import DeliveryState
from jobs.models_retention import PurgedJob

log = structlog.get_logger(__name__)

DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 10_000


@dataclass
class PurgeReport:
    completed: int = 0
    failed: int = 0
    files: int = 0
    markers: int = 0
    dry_run: bool = False
    # days each state was kept, as applied (0: kept forever, not purged)
    ttl_days: dict[str, int] = field(default_factory=dict)

    @property
    def jobs(self) -> int:
        return self.completed + self.failed


def expired_jobs(state: str, days: int, now: datetime) -> QuerySet[Job]:
    """Ended jobs in `state` untouched for `days`. An ended job's row does not change after its
    end, so `updated_at` is when it ended (and the sweeper's index covers state + updated_at).
    A job whose callback is still being tried is left for a later purge."""
    return Job.objects.filter(state=state, updated_at__lt=now - timedelta(days=days)).exclude(
        callback_deliveries__state__in=[DeliveryState.PENDING, DeliveryState.SENDING]
    )


def _purge_batch(expired: QuerySet[Job], batch_size: int, now: datetime) -> tuple[int, list[str]]:
    with transaction.atomic():
        # SKIP LOCKED: rows another purger holds are its to delete. Only the job rows are
        # locked, not the accounts joined for their user_id. (SQLite has one writer at a time
        # and ignores this.)
        locked = expired.select_for_update(skip_locked=True, of=("self",))
        rows = list(
            locked.order_by("updated_at").values_list("pk", "client_id", "account__user_id", "upload_name")[
                :batch_size
            ]
        )
        if not rows:
            return 0, []
        PurgedJob.objects.bulk_create(
            [
                PurgedJob(job_id=pk, client_id=client_id, user_id=user_id, purged_at=now)
                for pk, client_id, user_id, _name in rows
            ],
            ignore_conflicts=True,
        )
        # Deletes the jobs' callback deliveries and their attempts with them.
        Job.objects.filter(pk__in=[row[0] for row in rows]).delete()
    return len(rows), [row[3] for row in rows if row[3]]


def jobs_purge(
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    complete_days: int | None = None,
    fail_days: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
) -> PurgeReport:
    """Deletes expired jobs (or, with `dry_run`, counts them). `complete_days` / `fail_days`
    override the settings; `max_batches` bounds one run (the sweeper's), the command has none."""
    now = now or timezone.now()
    ttl = {
        JobState.COMPLETED: settings.JOB_TTL_COMPLETE_DAYS if complete_days is None else complete_days,
        JobState.FAILED: settings.JOB_TTL_FAIL_DAYS if fail_days is None else fail_days,
    }
    if any(days < 0 for days in ttl.values()):
        raise ValueError("retention days must be 0 (keep forever) or more")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch size must be between 1 and {MAX_BATCH_SIZE}")
    report = PurgeReport(dry_run=dry_run, ttl_days={str(k): v for k, v in ttl.items()})
    markers = PurgedJob.objects.none()
    if settings.JOB_TOMBSTONE_DAYS:
        markers = PurgedJob.objects.filter(purged_at__lt=now - timedelta(days=settings.JOB_TOMBSTONE_DAYS))

    if dry_run:
        for state, days in ttl.items():
            if days:
                setattr(report, state, expired_jobs(state, days, now).count())
        report.markers = markers.count()
        return report

    batches = 0
    for state, days in ttl.items():
        if not days:
            continue
        expired = expired_jobs(state, days, now)
        while max_batches is None or batches < max_batches:
            deleted, files = _purge_batch(expired, batch_size, now)
            batches += 1
            setattr(report, state, getattr(report, state) + deleted)
            for name in files:
                uploads.unstage(name)
            report.files += len(files)
            if deleted < batch_size:
                break
    while max_batches is None or batches < max_batches:
        ids = list(markers.values_list("pk", flat=True)[:batch_size])
        batches += 1
        if ids:
            report.markers += PurgedJob.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < batch_size:
            break
    if report.jobs or report.markers:
        log.info(
            "jobs_purged",
            completed=report.completed,
            failed=report.failed,
            files=report.files,
            markers=report.markers,
        )
    return report


def job_expired(*, client: ApiClient, job_id: str, user_id: str | None = None) -> bool:
    """Whether this client's job `job_id` was deleted by retention (for `user_id`, when the
    caller names one: a mismatch answers like a job that never existed)."""
    try:
        parsed = uuid.UUID(str(job_id))
    except ValueError:
        return False
    marker = PurgedJob.objects.filter(pk=parsed, client=client).first()
    if marker is None:
        return False
    return user_id is None or str(marker.user_id) == user_id.strip().lower()
