"""Writes on jobs: enqueue, publish, and the sweeper that makes sure nothing accepted is lost."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any

import dramatiq
import structlog
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import vault
from accounts.models import ApiClient, FlickrAccount
from flickrhub import metrics
from jobs import uploads
from jobs.models import ACTIVE_STATES, FINAL_STATES, QUEUE_OF_TARGET, Job, JobState, Target

log = structlog.get_logger(__name__)


class QueueUnavailable(Exception):
    """The broker did not take the message; the job was not accepted."""


class QueueBusy(Exception):
    """The client already has as many unfinished jobs as it may."""

    def __init__(self, in_flight: int) -> None:
        super().__init__(in_flight)
        self.in_flight = in_flight
        # Roughly how long the quota takes to work off a hundredth of the cap.
        per_second = max(1, settings.FLICKR_QUOTA_PER_HOUR) / 3600
        self.retry_after = max(1, min(300, int(settings.JOB_MAX_IN_FLIGHT_PER_CLIENT / 100 / per_second)))


def job_publish(job: Job, *, delay_ms: int | None = None) -> None:
    """Hands the job's message to its queue and records that it did. With RabbitMQ, publisher
    confirms make this return only once the broker has the message."""
    from jobs.tasks import ACTOR_OF_QUEUE  # the actors import the runner, which imports us

    actor = ACTOR_OF_QUEUE[QUEUE_OF_TARGET[Target(job.target)]]
    actor.send_with_options(
        args=(str(job.id),),
        kwargs={"request_id": job.request_id},
        delay=delay_ms if delay_ms and delay_ms > 0 else None,
    )
    try:
        Job.objects.mark_published(job.id)
    except DatabaseError as exc:
        # The message is out, so the job is accepted whatever the database says now: failing
        # here would tell the caller "not accepted" about a job that will run. Unrecorded, it
        # may be published again by the sweeper; the claim runs it once.
        log.warning("job_publish_unrecorded", job_id=str(job.id), error=type(exc).__name__)


def job_enqueue(
    *,
    client: ApiClient,
    account: FlickrAccount,
    method: str,
    params: dict[str, Any],
    target: str = Target.REST,
    callback_url: str = "",
    callback_secret: str = "",
    meta: dict[str, Any] | None = None,
    request_id: str = "",
    photo: UploadedFile | None = None,
    cache_max_age: int | None = None,
    paginate: bool = False,
) -> Job:
    """Accepts a Flickr call: the row is committed first, then the message is published, so a
    crash in between leaves a `queued` row that the sweeper publishes — never a message about
    a job that does not exist, and never an accepted job that nobody will run. An upload's
    file is staged before the row is written and removed again if the job is not accepted."""
    # A soft cap: two requests racing past it both get in, which is harmless.
    in_flight = Job.objects.filter(client=client, state__in=ACTIVE_STATES).count()
    if in_flight >= settings.JOB_MAX_IN_FLIGHT_PER_CLIENT:
        raise QueueBusy(in_flight)
    job_id = uuid.uuid4()
    staged = uploads.stage(photo, job_id) if photo is not None else ""
    try:
        with transaction.atomic():
            job = Job.objects.create(
                id=job_id,
                client=client,
                account=account,
                target=target,
                method=method,
                params=params,
                callback_url=callback_url,
                callback_secret_encrypted=vault.encrypt(callback_secret) if callback_secret else "",
                meta=meta,
                request_id=request_id,
                max_attempts=max(1, settings.JOB_RETRY_ATTEMPTS),
                upload_name=staged,
                upload_filename=_file_name(photo),
                upload_size=photo.size if photo is not None else None,
                upload_content_type=(photo.content_type or "") if photo is not None else "",
                cache_max_age=cache_max_age,
                paginate=paginate,
            )
    except BaseException:
        uploads.unstage(staged)
        raise
    try:
        job_publish(job)
    except dramatiq.errors.BrokerConnectionError as exc:
        # The broker is unreachable: answer 503 and take the job back, so the caller can retry
        # knowing nothing was accepted. (If the message did reach the broker after all, the
        # worker finds no row and drops it.)
        Job.objects.filter(pk=job.pk, state=JobState.QUEUED).delete()
        uploads.unstage(staged)
        log.warning("job_enqueue_broker_unavailable", job_id=str(job.id), error=type(exc).__name__)
        raise QueueUnavailable(str(exc)) from None
    metrics.job_enqueued(queue=job.queue_name, method=method)
    log.info(
        "job_enqueued",
        job_id=str(job.id),
        method=method,
        queue=job.queue_name,
        user_id=str(account.user_id),
    )
    return job


@dataclass(frozen=True)
class Call:
    """One validated call of a batch."""

    account: FlickrAccount
    method: str
    params: dict[str, Any]
    callback_url: str = ""
    callback_secret: str = ""
    meta: dict[str, Any] | None = None
    cache_max_age: int | None = None


def jobs_enqueue_batch(*, client: ApiClient, calls: list[Call], request_id: str = "") -> list[Job]:
    """Accepts a batch of REST calls: all rows in one transaction, then one message each. If the
    broker refuses the first message, nothing is accepted (503). If it goes away part-way, the
    rest are accepted all the same: their rows are committed and the sweeper publishes them."""
    in_flight = Job.objects.filter(client=client, state__in=ACTIVE_STATES).count()
    if in_flight + len(calls) > settings.JOB_MAX_IN_FLIGHT_PER_CLIENT:
        raise QueueBusy(in_flight)
    with transaction.atomic():
        jobs = Job.objects.bulk_create(
            [
                Job(
                    client=client,
                    account=call.account,
                    target=Target.REST,
                    method=call.method,
                    params=call.params,
                    callback_url=call.callback_url,
                    callback_secret_encrypted=vault.encrypt(call.callback_secret)
                    if call.callback_secret
                    else "",
                    meta=call.meta,
                    request_id=request_id,
                    max_attempts=max(1, settings.JOB_RETRY_ATTEMPTS),
                    cache_max_age=call.cache_max_age,
                )
                for call in calls
            ]
        )
    for index, job in enumerate(jobs):
        try:
            job_publish(job)
        except dramatiq.errors.BrokerConnectionError as exc:
            if index == 0:
                Job.objects.filter(pk__in=[j.pk for j in jobs], state=JobState.QUEUED).delete()
                log.warning("batch_enqueue_broker_unavailable", count=len(jobs), error=type(exc).__name__)
                raise QueueUnavailable(str(exc)) from None
            log.warning("batch_publish_incomplete", published=index, accepted=len(jobs))
            break
    log.info("jobs_enqueued", count=len(jobs), queue="flickr_rest")
    return jobs


def job_wait(job_id: uuid.UUID | str, seconds: float) -> Job | None:
    """Polls a job until it ends or `seconds` pass (`?wait=`); returns its last state."""
    started = time.monotonic()
    deadline = started + seconds
    while True:
        # Only the state while polling: the whole row is read once, at the end.
        state = Job.objects.filter(pk=job_id).values_list("state", flat=True).first()
        left = deadline - time.monotonic()
        if state is None or state in FINAL_STATES or left <= 0:
            return Job.objects.select_related("account").filter(pk=job_id).first()
        time.sleep(min(_wait_pause(time.monotonic() - started), left))


def _wait_pause(elapsed: float) -> float:
    """How long `job_wait` sleeps between looks. A Flickr call takes tens to hundreds of ms, so
    the first second is polled finely (a doubling pause from 20 ms answered a 50 ms job only
    at 140 ms); after that the pause grows, so a long wait costs few queries."""
    if elapsed < 0.25:
        return 0.005
    if elapsed < 1.0:
        return 0.02
    return min(0.5, elapsed / 4)


def _file_name(photo: UploadedFile | None) -> str:
    """The caller's file name without any path, for Flickr's default title."""
    if photo is None or not photo.name:
        return ""
    return PurePath(photo.name.replace("\\", "/")).name[:255]


def _republish(job_id: uuid.UUID, *, delay_ms: int | None = None) -> bool:
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return False
    try:
        job_publish(job, delay_ms=delay_ms)
    except dramatiq.errors.BrokerConnectionError:
        log.warning("job_republish_failed", job_id=str(job_id))
        return False
    return True


def _publish_unpublished(jobs: QuerySet[Job], now: datetime) -> int:
    """Publishes each job of `jobs` whose `published_at` this sweeper is first to set; a job
    due a little later goes as a message delayed to its time."""
    published = 0
    for job_id, due in jobs.order_by("next_attempt_at").values_list("pk", "next_attempt_at")[:1000]:
        if not Job.objects.filter(pk=job_id, published_at__isnull=True).update(published_at=now):
            continue  # another sweeper took it
        delay_ms = int((due - now).total_seconds() * 1000) if due is not None and due > now else None
        if _republish(job_id, delay_ms=delay_ms):
            published += 1
        else:
            Job.objects.filter(pk=job_id).update(published_at=None)
    return published


def jobs_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Finds accepted work that no message will deliver and publishes it again. Safe to run
    in several processes at once: each re-publish is claimed by a conditional UPDATE of
    `published_at`, and a duplicate message would still run the job once (the claim)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.JOB_REPUBLISH_AFTER_SECONDS)
    counts = {"queued": 0, "retrying": 0, "running": 0}

    # 1. Committed but never published (the process died between commit and publish). A
    #    confirmed publish is durable in RabbitMQ, so published jobs are not touched: a long
    #    backlog must not be duplicated.
    counts["queued"] = _publish_unpublished(
        Job.objects.filter(state=JobState.QUEUED, published_at__isnull=True, created_at__lt=stale), now
    )
    # 2. Retries and waits (quota slots) due before the next sweep, whose message was never
    #    handed over: long waits are kept in the database, not as delayed messages held by a
    #    worker, and go out as delayed messages shortly before their time, so a job reaches its
    #    quota slot on time instead of up to a sweep interval late.
    lookahead = timedelta(seconds=min(60, max(5, 2 * settings.JOB_SWEEP_INTERVAL_SECONDS)))
    counts["retrying"] = _publish_unpublished(
        Job.objects.filter(
            state=JobState.RETRYING, published_at__isnull=True, next_attempt_at__lte=now + lookahead
        ),
        now,
    )

    # 3. Running past its lease: its worker died without RabbitMQ noticing (or the embedded
    #    process restarted). The claim accepts an expired lease, so one new message is enough;
    #    published_at past lease_until marks it sent.
    for job_id, lease_until in Job.objects.filter(state=JobState.RUNNING, lease_until__lt=now).values_list(
        "pk", "lease_until"
    )[:1000]:
        claimed = (
            Job.objects.filter(pk=job_id, state=JobState.RUNNING, lease_until=lease_until)
            .exclude(published_at__gt=lease_until)
            .update(published_at=now)
        )
        if claimed and _republish(job_id):
            counts["running"] += 1

    if any(counts.values()):
        log.warning("jobs_swept", **counts)
    return counts


def jobs_recover_embedded() -> int:
    """Embedded mode keeps messages in memory, so at start every unfinished job is published
    again: nothing accepted before a restart is lost. Only for a single-process hub, where any
    `running` job belongs to the process that died: its lease is ended, so the next run takes
    it over knowing the dead run may have sent its call (a write is then not sent twice)."""
    now = timezone.now()
    Job.objects.filter(state=JobState.RUNNING).update(lease_until=now)
    count = 0
    for job in Job.objects.filter(state__in=[*ACTIVE_STATES]).order_by("created_at"):
        delay_ms = None
        if job.state == JobState.RETRYING and job.next_attempt_at and job.next_attempt_at > now:
            delay_ms = int((job.next_attempt_at - now).total_seconds() * 1000)
        job_publish(job, delay_ms=delay_ms)
        count += 1
    return count
