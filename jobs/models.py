"""The Job: one Flickr call an integrator asked for, and its life.

States (the original's names, plus `running`): queued → running → completed | failed, and
running → retrying → running for a scheduled retry. Every transition is one conditional UPDATE
on the row, so two workers holding the same message (a redelivery, a sweeper re-publish) cannot
both run it: the second finds the row no longer in the state it expects and stands down.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import ApiClient, FlickrAccount, FlickrApp
from flickrhub import sqlrows

# Models of their own modules, registered in this app by being imported here.
from jobs.models_callbacks import CallbackAttempt, CallbackDelivery, CallbackSecret  # noqa: F401
from jobs.models_retention import PurgedJob  # noqa: F401


class JobState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"


class Target(models.TextChoices):
    REST = "rest"
    UPLOAD = "upload"
    REPLACE = "replace"


QUEUE_OF_TARGET = {
    Target.REST: "flickr_rest",
    Target.UPLOAD: "flickr_upload",
    Target.REPLACE: "flickr_replace",
}


class Priority(models.TextChoices):
    # Within a client's share of the quota, high-priority jobs go first (`"priority": "high"`,
    # or a caller waiting with `?wait`); a normal one waiting long enough counts as high.
    NORMAL = "normal"
    HIGH = "high"


ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING, JobState.RETRYING)
# A job parked for its consumer key's quota: the fair dispatcher (jobs/dispatcher.py) gives it
# a slot. Other waits carry a time (next_attempt_at) and go back to the queue on their own.
# A new job parks at once (state `queued`) when its key is already short of quota.
PARKED = Q(state__in=[JobState.QUEUED, JobState.RETRYING], wait_reason="quota", next_attempt_at__isnull=True)
FINAL_STATES = (JobState.COMPLETED, JobState.FAILED)


@dataclass(frozen=True)
class Transition:
    """The last transition this run applied to its job: what the attempt log records, known
    without reading the row back."""

    job_id: str
    state: str
    error: dict[str, Any] | None
    # The attempt was given back (a wait for quota, the circuit or an identical call, or the
    # next page of a walk): the job's next run takes the same attempt number.
    gave_back: bool
    started_at: datetime | None


# Set by every transition of a running job; each message starts with it cleared
# (jobs/middleware.py), so it never speaks for another message's job.
last_transition: ContextVar[Transition | None] = ContextVar("last_transition", default=None)


class JobQuerySet(models.QuerySet["Job"]):
    def claim(self, job_id: uuid.UUID | str, *, lease_seconds: int, takeover: bool) -> Job | None:
        """Moves a job to `running` for one worker and returns it, or None if it is not ours
        to run. A job is claimable when queued or retrying; a `running` job only when its lease
        ran out (its worker died) or, with `takeover`, when RabbitMQ redelivered the message
        because the consumer that held it is gone. A job taken over from a run that did not
        finish comes back with `taken_over` set: that run may have sent its call already."""
        now = timezone.now()
        token = uuid.uuid4()
        lease_until = now + timedelta(seconds=lease_seconds)
        fields: dict[str, Any] = {
            "state": JobState.RUNNING,
            "run_token": token,
            "attempts": F("attempts") + 1,
            "started_at": now,
            "lease_until": lease_until,
            "next_attempt_at": None,
            "wait_reason": "",
            "updated_at": now,
        }
        taken_over = False
        if connection.vendor == "postgresql":
            job = _claim_in_one_statement(job_id, token=token, now=now, lease_until=lease_until)
            if job is not None:
                return job
            updated = 0
        else:
            updated = self.filter(pk=job_id, state__in=[JobState.QUEUED, JobState.RETRYING]).update(**fields)
        if not updated:
            # Only when the usual claim fails (a duplicate or redelivered message) is a run that
            # never finished looked for, so the common path stays one statement.
            abandoned = Q(state=JobState.RUNNING, lease_until__lt=now)
            if takeover:
                abandoned |= Q(state=JobState.RUNNING)
            updated = self.filter(abandoned, pk=job_id).update(**fields)
            taken_over = bool(updated)
        if not updated:
            return None
        job = job_with_relations(job_id)
        assert job is not None  # this run holds it now: nothing else deletes a running job
        job.taken_over = taken_over
        return job

    def _finish(self, job: Job, **fields: Any) -> bool:
        """Applies a transition only if this run still holds the job."""
        fields["updated_at"] = timezone.now()
        mine = {"pk": job.pk, "state": JobState.RUNNING, "run_token": job.run_token}
        # The row's `awaited` as the transition finds it: a request that starts waiting takes
        # the row's lock for its own UPDATE first, or reads the job's end after this one.
        awaited = sqlrows.update_returning(Job, fields, where=mine, returning="awaited", using=self.db)
        if awaited is None:  # an expression among the fields (attempts - 1)
            awaited = [True] * self.filter(**mine).update(**fields)
        applied = bool(awaited)
        job.awaited = any(awaited)
        if applied:
            last_transition.set(
                Transition(
                    job_id=str(job.pk),
                    state=fields["state"],
                    error=fields.get("error"),
                    gave_back="attempts" in fields,
                    started_at=job.started_at,
                )
            )
        return applied

    def complete(self, job: Job, *, result: dict[str, Any], from_cache: bool = False, **fields: Any) -> bool:
        return self._finish(
            job,
            state=JobState.COMPLETED,
            result=result,
            from_cache=from_cache,
            finished_at=timezone.now(),
            lease_until=None,
            quota_slot_at=None,
            quota_parked_at=None,
            wait_reason="",
            **fields,
        )

    def fail(self, job: Job, *, error: dict[str, Any]) -> bool:
        return self._finish(
            job,
            state=JobState.FAILED,
            error=error,
            finished_at=timezone.now(),
            lease_until=None,
            quota_slot_at=None,
            quota_parked_at=None,
            wait_reason="",
        )

    def schedule_retry(self, job: Job, *, error: dict[str, Any], at: datetime) -> bool:
        return self._finish(
            job,
            state=JobState.RETRYING,
            error=error,
            next_attempt_at=at,
            lease_until=None,
            published_at=None,
            quota_slot_at=None,
            wait_reason="",
        )

    def postpone(self, job: Job, *, reason: str, at: datetime, **fields: Any) -> bool:
        """Puts a claimed job back to wait — for quota, an open circuit, or an identical call
        in flight — without counting it as an attempt: nothing was sent to Flickr."""
        return self._finish(
            job,
            state=JobState.RETRYING,
            attempts=F("attempts") - 1,
            wait_reason=reason,
            next_attempt_at=at,
            lease_until=None,
            published_at=None,
            **fields,
        )

    def park(self, job: Job) -> bool:
        """Puts a claimed job back to wait for the fair dispatcher to give it a quota slot. It
        keeps the time it first parked, so a job that missed its slot keeps its place."""
        return self._finish(
            job,
            state=JobState.RETRYING,
            attempts=F("attempts") - 1,
            wait_reason="quota",
            next_attempt_at=None,
            lease_until=None,
            published_at=None,
            quota_slot_at=None,
            quota_parked_at=Coalesce(F("quota_parked_at"), Value(timezone.now())),
        )

    def parked(self) -> JobQuerySet:
        return self.filter(PARKED)

    def grant(self, job_id: uuid.UUID | str, *, slot_at: datetime) -> bool:
        """Gives a parked job its quota slot; False if it is no longer parked."""
        now = timezone.now()
        return bool(
            self.filter(PARKED, pk=job_id).update(
                next_attempt_at=slot_at, quota_slot_at=slot_at, published_at=now, updated_at=now
            )
        )

    def next_page(self, job: Job, *, progress: dict[str, Any]) -> bool:
        """A paginated walk got a page: the job goes back in the queue for the next one, the
        page's items saved, the attempt given back."""
        return self._finish(
            job,
            state=JobState.QUEUED,
            attempts=F("attempts") - 1,
            progress=progress,
            lease_until=None,
            published_at=None,
            quota_slot_at=None,
        )

    def mark_published(self, job_id: uuid.UUID | str) -> None:
        self.filter(pk=job_id).update(published_at=timezone.now())


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of their own: the indexes below that start with client or account serve every
    # lookup by either (and the cascades), and each index more is work on every job write.
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="jobs", db_index=False)
    account = models.ForeignKey(FlickrAccount, on_delete=models.CASCADE, related_name="jobs", db_index=False)
    target = models.CharField(max_length=10, choices=Target.choices, default=Target.REST)
    method = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    from_cache = models.BooleanField(default=False)
    callback_url = models.URLField(max_length=2000, blank=True)
    callback_secret_encrypted = models.TextField(blank=True, editable=False)
    meta = models.JSONField(null=True, blank=True)
    # Upload and replace jobs: the staged file (a name in the "uploads" storage, removed when
    # the job ends), the caller's file name (Flickr titles untitled photos after it), its size
    # and the type sniffed from its bytes.
    upload_name = models.CharField(max_length=255, blank=True, editable=False)
    upload_filename = models.CharField(max_length=255, blank=True)
    upload_size = models.BigIntegerField(null=True, blank=True)
    upload_content_type = models.CharField(max_length=100, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    # The caller's cache wish: None = any cached answer up to CACHE_TTL_SECONDS old, 0 = none.
    cache_max_age = models.PositiveIntegerField(null=True, blank=True)
    # Why a job is waiting without having failed: "quota", "circuit_open" or "coalesced".
    wait_reason = models.CharField(max_length=20, blank=True)
    # The job whose identical call this one waits for (coalescing).
    coalesced_with = models.UUIDField(null=True, blank=True)
    # A quota slot reserved for this job: when it comes, the job calls without asking again.
    quota_slot_at = models.DateTimeField(null=True, blank=True)
    priority = models.CharField(max_length=6, choices=Priority.choices, default=Priority.NORMAL)
    # When the job first waited for the fair dispatcher (its place in line), until it ends.
    quota_parked_at = models.DateTimeField(null=True, blank=True)
    # "paginate": true — the walk over every page, and how far it got.
    paginate = models.BooleanField(default=False)
    progress = models.JSONField(null=True, blank=True, editable=False)
    # A request waits for the job's end (`?wait=`): the worker that ends it announces it on Redis
    # for the waiting web process (jobs/job_ends.py). Set by the enqueue, or by a status read
    # that waits, before it looks at the row.
    awaited = models.BooleanField(default=False, editable=False)
    run_token = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()
    # Set by `claim` (not stored): this run took the job over from one that never finished.
    taken_over = False
    # Set by the runner (not stored): this run's call is the half-open circuit's probe.
    circuit_probe = False

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # the API's and the admin's lists: a client's / an account's recent jobs
            models.Index(fields=["client", "-created_at"], name="job_client_recent"),
            models.Index(fields=["account", "-created_at"], name="job_account_recent"),
            # the admin's filters and the sweeper's scans of unfinished work
            models.Index(fields=["state", "updated_at"], name="job_state_updated"),
            models.Index(fields=["method", "-created_at"], name="job_method_recent"),
            models.Index(fields=["request_id"], name="job_request_id"),
            # the in-flight cap: a client's unfinished jobs
            models.Index(fields=["client", "state"], name="job_client_state"),
            # the fair dispatcher's look at the jobs parked for quota
            models.Index(
                fields=["client", "account", "quota_parked_at"], name="job_quota_parked", condition=PARKED
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} ({self.state})"

    @property
    def queue_name(self) -> str:
        return QUEUE_OF_TARGET[Target(self.target)]


class FailedJob(models.Model):
    """The failed-job archive: one row each time a job fails for good, with everything needed
    to understand and replay it. A job retried from the admin and failing again gets a second
    row, so the rows of one job id are its history."""

    # Not a foreign key: the archive outlives the job when retention deletes it.
    job_id = models.UUIDField(db_index=True)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="failed_jobs")
    account = models.ForeignKey(FlickrAccount, on_delete=models.CASCADE, related_name="failed_jobs")
    target = models.CharField(max_length=10, choices=Target.choices)
    method = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    error = models.JSONField(default=dict)
    error_class = models.CharField(max_length=20)
    error_code = models.CharField(max_length=50)
    flickr_code = models.IntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField()
    max_attempts = models.PositiveIntegerField()
    request_id = models.CharField(max_length=128, blank=True)
    job_created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(default=timezone.now, db_index=True)
    retried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-archived_at"]
        indexes = [
            models.Index(fields=["error_class", "-archived_at"], name="failed_class_recent"),
            models.Index(fields=["method", "-archived_at"], name="failed_method_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.method} failed ({self.error_code})"


class IdempotencyKey(models.Model):
    """An `Idempotency-Key` an API client sent with an enqueue, and the answer it got."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="idempotency_key_per_client")]

    def __str__(self) -> str:
        return self.key


# A job with its account, the account's Flickr app and its client: what a worker needs to run
# it, read with one hand-written SELECT (flickrhub/sqlrows.py says why).
_JOB_RELATIONS = sqlrows.Join(
    (Job, "j"), (FlickrAccount, "a", "j.account"), (FlickrApp, "p", "a.app"), (ApiClient, "c", "j.client")
)


def job_with_relations(job_id: uuid.UUID | str) -> Job | None:
    """The job with its account, app and client set, or None."""
    return _JOB_RELATIONS.first(
        _JOB_RELATIONS.select() + ' WHERE j."id" = %s', [sqlrows.param(Job, "pk", job_id)]
    )


def _claim_in_one_statement(
    job_id: uuid.UUID | str, *, token: uuid.UUID, now: datetime, lease_until: datetime
) -> Job | None:
    """PostgreSQL: the usual claim (queued or retrying → running) and the read of the job with
    its relations in one statement, an UPDATE … RETURNING inside a WITH."""
    queued = f"""UPDATE {connection.ops.quote_name(Job._meta.db_table)} SET "state" = %s, "run_token" = %s,
        "attempts" = "attempts" + 1, "started_at" = %s, "lease_until" = %s,
        "next_attempt_at" = NULL, "wait_reason" = '', "updated_at" = %s
        WHERE "id" = %s AND "state" IN (%s, %s) RETURNING *"""  # noqa: S608 (quoted names)
    params = [JobState.RUNNING.value, token, now, lease_until, now, sqlrows.param(Job, "pk", job_id)]
    params += [JobState.QUEUED.value, JobState.RETRYING.value]
    return _JOB_RELATIONS.first(f"WITH claimed AS ({queued}) " + _JOB_RELATIONS.select("claimed"), params)
