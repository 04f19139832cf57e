"""What the hub records about running itself: worker heartbeats, leases for periodic work, and
each attempt of a job (for the admin's job history).

They live in the project app, apart from the apps that own the domain, because they describe
processes rather than Flickr calls.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """A worker process says it is alive every WORKER_HEARTBEAT_SECONDS; the admin dashboard
    lists, per queue, who was heard from recently. A process that stops cleanly removes its row;
    one that died leaves a row that turns stale."""

    worker_id = models.CharField(max_length=200, primary_key=True, help_text="host:pid")
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    queues = models.JSONField(default=list)
    threads = models.PositiveIntegerField(default=0)
    in_progress = models.PositiveIntegerField(default=0, help_text="Messages being run at the last beat.")
    stopping = models.BooleanField(default=False, help_text="Received SIGTERM; finishing jobs in hand.")
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["hostname", "pid"]

    def __str__(self) -> str:
        return self.worker_id


class Lease(models.Model):
    """A named right to do periodic work, held until `expires_at` (used when there is no Redis:
    see flickrhub/leases.py)."""

    name = models.CharField(max_length=100, primary_key=True)
    holder = models.CharField(max_length=200)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} ({self.holder})"


class AttemptOutcome(models.TextChoices):
    COMPLETED = "completed"
    FAILED = "failed"
    RETRYING = "retrying", "failed, retry scheduled"
    SUPERSEDED = "superseded", "superseded by another run"
    ERROR = "error", "interrupted by an error"


class JobAttempt(models.Model):
    """One run of a job by a worker: when, where, how long, and how it ended."""

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=12, choices=AttemptOutcome.choices)
    error = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.FloatField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["job", "number", "finished_at"]
        indexes = [models.Index(fields=["job", "number"], name="attempt_job_number")]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.outcome}"
