"""Running one job: claim it, call Flickr for its account, record how it ended."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.utils import timezone

from accounts.models import AccountStatus
from accounts.services import account_mark_needs_relink
from accounts.vault import VaultError
from flickr import client as flickr_client
from flickr.errors import ErrorClass, FlickrError
from flickrhub import metrics, obs
from jobs import uploads
from jobs.models import Job, Target
from jobs.services import job_publish

log = structlog.get_logger(__name__)

# Retries due within this many seconds travel as delayed messages; later ones wait in the
# database for the sweeper, because RabbitMQ closes a consumer that holds an unacknowledged
# (delayed) message past its consumer_timeout.
SHORT_DELAY_SECONDS = 60


def job_run(job_id: str, *, takeover: bool = False, lease_seconds: int | None = None) -> None:
    try:
        uuid.UUID(job_id)
    except ValueError:
        log.error("job_message_malformed", job_id=job_id[:64])
        return
    job = Job.objects.claim(
        job_id, lease_seconds=lease_seconds or settings.JOB_LEASE_SECONDS, takeover=takeover
    )
    if job is None:
        # Already run, running elsewhere, or deleted: a duplicate message is harmless.
        log.debug("job_not_claimed", job_id=job_id)
        return
    structlog.contextvars.bind_contextvars(
        job_id=str(job.id),
        user_id=str(job.account.user_id),
        method=job.method,
        queue=job.queue_name,
        attempt=job.attempts,
    )
    try:
        flickr = _call_flickr(job)
    except FlickrError as error:
        _handle_failure(job, error)
        return
    result = {
        "from_cache": False,
        "flickr": flickr,
        # Whether the Flickr call's log event reached the external log sink (OBS_API_URL).
        "observability": obs.call_report(job_id=str(job.id)),
    }
    if Job.objects.complete(job, result=result):
        uploads.unstage(job.upload_name)
        log.info("job_completed", duration_ms=_ms_since(job.started_at))
        _count(job, "completed")


def _call_flickr(job: Job) -> dict[str, Any]:
    account = job.account
    if account.status != AccountStatus.ACTIVE:
        raise FlickrError(
            f"The Flickr account behind user_id {account.user_id} is {account.get_status_display()}"
            f"{': ' + account.status_reason if account.status_reason else ''}. "
            "The person must link it again at the hub's /connect/ page.",
            error_class=ErrorClass.RELINK,
            code="ERR_FLICKR_RELINK_REQUIRED",
        )
    try:
        creds = account.credentials()
    except VaultError as exc:
        raise FlickrError(str(exc), error_class=ErrorClass.CALLER, code="ERR_TOKEN_UNREADABLE") from None
    if job.target == Target.REST:
        return flickr_client.call_rest(creds, job.method, _as_flickr_args(job.params))
    return _send_file(job, creds)


def _send_file(job: Job, creds: Any) -> dict[str, Any]:
    try:
        photo = uploads.open_staged(job.upload_name) if job.upload_name else None
    except FileNotFoundError:
        photo = None
    if photo is None:
        raise FlickrError(
            f"The file for this {job.target} job is no longer staged (removed, or its storage is "
            "not shared with this worker: see UPLOAD_STAGING_DIR). Send the file again.",
            error_class=ErrorClass.CALLER,
            code="ERR_UPLOAD_FILE_MISSING",
        )
    with photo:
        return flickr_client.call_upload(
            creds, job.target, _as_upload_fields(job.params), photo, job.upload_filename
        )


def _as_upload_fields(params: dict[str, Any]) -> dict[str, str]:
    """Upload fields as Flickr wants them: like REST arguments, except that a list of tags is
    space-separated with multi-word tags in double quotes (FLICKR-API.md §3.1)."""
    tags = (params or {}).get("tags")
    fields = _as_flickr_args({k: v for k, v in (params or {}).items() if k != "tags"})
    if isinstance(tags, list):
        fields["tags"] = " ".join(f'"{t}"' if " " in str(t) else str(t) for t in tags if str(t))
    elif tags is not None:
        fields["tags"] = str(tags)
    return fields


def _as_flickr_args(params: dict[str, Any]) -> dict[str, str]:
    """Flickr's arguments are all strings: booleans as 1/0, lists comma-separated."""
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if isinstance(value, bool):
            out[key] = "1" if value else "0"
        elif isinstance(value, list):
            out[key] = ",".join("1" if v is True else "0" if v is False else str(v) for v in value)
        elif value is None:
            continue
        else:
            out[key] = str(value)
    return out


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, capped; never sooner than Flickr's Retry-After."""
    low = settings.JOB_RETRY_MIN_BACKOFF_MS / 1000
    high = settings.JOB_RETRY_MAX_BACKOFF_MS / 1000
    ceiling = min(high, low * 2 ** max(0, attempt - 1))
    delay = random.uniform(low, max(low, ceiling))
    if retry_after is not None:
        delay = max(delay, min(retry_after, high))
    return delay


def _handle_failure(job: Job, error: FlickrError) -> None:
    details = error.as_dict()
    if error.error_class is ErrorClass.RETRY and job.attempts < job.max_attempts:
        delay = backoff_seconds(job.attempts, error.retry_after)
        at = timezone.now() + timedelta(seconds=delay)
        if Job.objects.schedule_retry(job, error=details, at=at):
            metrics.job_finished(
                queue=job.queue_name, method=job.method, state="retrying", error_class=error.error_class.value
            )
            log.warning(
                "job_retrying",
                error_code=error.code,
                delay_s=round(delay, 2),
                next_attempt_at=at.isoformat(),
            )
            if delay <= SHORT_DELAY_SECONDS:
                job_publish(job, delay_ms=int(delay * 1000))
        return
    if error.error_class is ErrorClass.RETRY:
        details["message"] = f"Gave up after {job.attempts} attempts. Last error: {error.message}"
    elif error.error_class is ErrorClass.RELINK:
        account_mark_needs_relink(account_id=job.account_id, reason=error.message)
        details["message"] = (
            f"{error.message} Send the person who owns user_id {job.account.user_id} "
            "to the hub's /connect/ page to link the account again."
            if "connect" not in error.message
            else error.message
        )
    elif error.error_class is ErrorClass.KEY_DISABLED:
        log.error(
            "flickr_key_disabled",
            flickr_app_id=job.account.app_id,
            message="Flickr reports the API key disabled or expired (code 100); an operator must act.",
        )
    if Job.objects.fail(job, error=details):
        uploads.unstage(job.upload_name)
        log.warning(
            "job_failed",
            error_code=error.code,
            error_class=error.error_class.value,
            flickr_code=error.flickr_code,
            duration_ms=_ms_since(job.started_at),
        )
        _count(job, "failed", error.error_class.value)


def _count(job: Job, state: str, error_class: str = "") -> None:
    """Metrics of a job that ended: by queue, method class and error class, and its latency
    from acceptance to now."""
    metrics.job_finished(
        queue=job.queue_name,
        method=job.method,
        state=state,
        error_class=error_class,
        latency_seconds=(timezone.now() - job.created_at).total_seconds(),
    )


def _ms_since(started: Any) -> float | None:
    if started is None:
        return None
    return round((timezone.now() - started).total_seconds() * 1000, 1)
