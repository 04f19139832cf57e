"""The failed-job archive and the dead-letter queue.

A job that fails for good is copied into `FailedJob` with everything needed to understand and
replay it, and — on RabbitMQ — its message goes to the `flickr_dlq` queue, as the original
service did, for tools that watch that queue. From the admin an operator can retry an archived
job: the same job id runs again from its first attempt, and the archive keeps its history.
"""

from __future__ import annotations

import json
from typing import Any

import dramatiq
import pika
import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AccountStatus
from jobs.models import FailedJob, Job, JobState, Target
from jobs.services import job_publish

log = structlog.get_logger(__name__)

DLQ = "flickr_dlq"
_declared_channels: set[int] = set()


def job_failed_for_good(job: Job, error: dict[str, Any]) -> FailedJob:
    failed = FailedJob.objects.create(
        job_id=job.id,
        client_id=job.client_id,
        account_id=job.account_id,
        target=job.target,
        method=job.method,
        params=job.params,
        error=error,
        error_class=str(error.get("class", "")),
        error_code=str(error.get("code", "")),
        flickr_code=error.get("flickr_code"),
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        request_id=job.request_id,
        job_created_at=job.created_at,
        started_at=job.started_at,
        finished_at=timezone.now(),
    )
    log.info("job_archived", archive_id=failed.pk, error_code=failed.error_code)
    _dead_letter(job, error)
    return failed


def _dead_letter(job: Job, error: dict[str, Any]) -> None:
    """Publishes the failed job's message to RabbitMQ's `flickr_dlq`, in the original's shape.
    The archive row is already written: a broker hiccup here loses nothing."""
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = dramatiq.get_broker()
    if not isinstance(broker, RabbitmqBroker):
        return  # embedded: the archive is the dead-letter store
    body = {
        "jobId": str(job.id),
        "method": job.method,
        "params": job.params,
        "userId": str(job.account.user_id),
        "target": job.target,
        "traceId": job.request_id,
        "meta": job.meta,
        "error": error,
    }
    try:
        channel = broker.channel
        if id(channel) not in _declared_channels:
            channel.queue_declare(
                queue=DLQ, durable=True, arguments={"x-max-length": settings.DLQ_MAX_LENGTH}
            )
            _declared_channels.add(id(channel))
        channel.basic_publish(
            exchange="",
            routing_key=DLQ,
            body=json.dumps(body).encode(),
            properties=pika.BasicProperties(
                delivery_mode=2,
                content_type="application/json",
                headers={"attempts": job.attempts, "failed": True},
            ),
        )
    except pika.exceptions.AMQPError as exc:
        log.error("job_dlq_failed", error=type(exc).__name__, detail=str(exc)[:200])
        return
    log.warning("job_dlq", dlq=DLQ, attempts=job.attempts)


def retry_problem(failed: FailedJob) -> str | None:
    """Why an archived job cannot be run again, or None."""
    job = Job.objects.select_related("account").filter(pk=failed.job_id).first()
    if job is None:
        return "the job no longer exists (retention removed it)"
    if job.state != JobState.FAILED:
        return f"the job is {job.state}, not failed: it was retried already"
    if job.account.status != AccountStatus.ACTIVE:
        return (
            f"the account (user_id {job.account.user_id}) is {job.account.get_status_display()}: "
            "the person must link it again at /connect/ first"
        )
    if job.target != Target.REST:
        return "an upload's file is deleted when it fails: the integrator must send it again"
    return None


def retry(failed: FailedJob) -> str | None:
    """Runs an archived job again under its own id, from its first attempt. Returns why not."""
    problem = retry_problem(failed)
    if problem:
        return problem
    now = timezone.now()
    with transaction.atomic():
        reset = Job.objects.filter(pk=failed.job_id, state=JobState.FAILED).update(
            state=JobState.QUEUED,
            attempts=0,
            error=None,
            result=None,
            finished_at=None,
            next_attempt_at=None,
            published_at=None,
            wait_reason="",
            coalesced_with=None,
            quota_slot_at=None,
            updated_at=now,
        )
        if not reset:
            return "the job changed meanwhile"
        FailedJob.objects.filter(pk=failed.pk).update(retried_at=now)
    job = Job.objects.get(pk=failed.job_id)
    try:
        job_publish(job)
    except dramatiq.errors.BrokerConnectionError:
        pass  # queued and unpublished: the sweeper publishes it
    log.info("job_retried_from_archive", job_id=str(job.id), archive_id=failed.pk)
    return None
