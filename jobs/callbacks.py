"""Callbacks: when a job ends, its result is POSTed to the job's callback URL.

The runner calls `delivery_schedule` right after the job's end is recorded; it writes a
`CallbackDelivery` holding the exact body, and publishes its id to the `flickr_callbacks` queue,
whose own workers send it (a slow receiver never holds up a Flickr worker). Each try is signed
afresh (jobs/webhooks.py), checked and pinned to approved addresses (jobs/callback_http.py),
recorded as a `CallbackAttempt`, and on a non-2xx answer or a network error tried again with
backoff, up to CALLBACK_RETRY_ATTEMPTS tries in all. A callback's fate never changes the job.

Nothing is lost between the steps: `deliveries_sweep` (run by every worker's sweeper) publishes
deliveries that were written but never published, retries whose time has come, tries whose
worker died, and — a backstop — schedules the delivery of a job that ended without one.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import dramatiq
import requests
import structlog
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from accounts import vault
from accounts.vault import VaultError
from flickrhub import metrics
from jobs import webhooks
from jobs.callback_http import CallbackRefused, callback_target, callback_url_problem, post
from jobs.models import Job, JobState
from jobs.models_callbacks import CallbackAttempt, CallbackDelivery, DeliveryState

__all__ = [
    "callback_payload",
    "callback_url_problem",
    "deliveries_recover_embedded",
    "deliveries_sweep",
    "delivery_resend",
    "delivery_schedule",
    "delivery_send",
]

log = structlog.get_logger(__name__)

ENDED_STATES = (JobState.COMPLETED, JobState.FAILED)
# Retries due within this many seconds travel as delayed messages; later ones wait in the
# database for the sweeper (RabbitMQ closes a consumer holding a delayed message too long).
SHORT_DELAY_SECONDS = 60
# How far back the sweeper looks for ended jobs whose delivery was never written (the worker
# died between recording the end and writing the delivery). Short, so that turning
# CALLBACK_ENABLED on does not send callbacks for a backlog of old jobs.
BACKSTOP_WINDOW = timedelta(hours=1)


# --- Scheduling -----------------------------------------------------------------------------


def _timestamp(moment: datetime) -> str:
    # The original's `new Date().toISOString()` form: UTC, milliseconds, "Z".
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def callback_payload(job: Job) -> dict[str, Any]:
    """The original service's callback body for an ended job."""
    completed = job.state == JobState.COMPLETED
    return {
        "job_id": str(job.id),
        "user_id": str(job.account.user_id),
        "queue": job.queue_name,
        "state": job.state,
        "result": (job.result or {}).get("flickr") if completed else None,
        "error": None if completed else {"message": "", "code": None, **(job.error or {})},
        "from_cache": bool(job.from_cache) if completed else False,
        "attempts_made": job.attempts,
        "max_attempts": job.max_attempts,
        "timestamp": _timestamp(job.finished_at or job.updated_at),
        "trace_id": job.request_id or None,
        "meta": job.meta,
    }


def _encode(payload: dict[str, Any]) -> str:
    # Compact, like the original's JSON.stringify. Signatures cover these exact bytes.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def delivery_schedule(job: Job) -> CallbackDelivery | None:
    """Writes and publishes the delivery of a job that has just ended, if it has a callback
    URL and callbacks are on. Safe to call twice for one end: the second finds it written.
    Never raises for the broker or the database: the sweeper finishes what this could not."""
    if not job.callback_url or not settings.CALLBACK_ENABLED:
        return None
    # The row as it was committed: the caller's copy predates the end it recorded.
    ended = Job.objects.select_related("account").filter(pk=job.pk, state__in=ENDED_STATES).first()
    if ended is None or ended.finished_at is None or not ended.callback_url:
        return None
    try:
        with transaction.atomic():
            delivery = CallbackDelivery.objects.create(
                job=ended,
                job_finished_at=ended.finished_at,
                url=ended.callback_url,
                body=_encode(callback_payload(ended)),
                max_attempts=max(1, settings.CALLBACK_RETRY_ATTEMPTS),
            )
    except IntegrityError:
        return None  # this end's delivery exists already
    except DatabaseError:
        log.exception("callback_schedule_failed", job_id=str(job.id))
        return None
    transaction.on_commit(lambda: _publish_or_leave(delivery))
    return delivery


def delivery_publish(delivery: CallbackDelivery, *, delay_ms: int | None = None) -> None:
    from jobs.tasks import flickr_callback  # the actors import the runner, which imports us

    flickr_callback.send_with_options(
        args=(str(delivery.id),),
        kwargs={"request_id": delivery.job.request_id},
        delay=delay_ms if delay_ms and delay_ms > 0 else None,
    )
    CallbackDelivery.objects.mark_published(delivery.id)


def _publish_or_leave(delivery: CallbackDelivery, *, delay_ms: int | None = None) -> bool:
    try:
        delivery_publish(delivery, delay_ms=delay_ms)
    except dramatiq.errors.BrokerError as exc:
        # Left unpublished: the sweeper publishes it once the broker is back.
        log.warning("callback_publish_failed", delivery_id=str(delivery.id), error=type(exc).__name__)
        return False
    return True


# --- Sending --------------------------------------------------------------------------------


def _lease_seconds() -> float:
    # connect + answer timeouts, and room for recording the outcome
    return settings.CALLBACK_TIMEOUT_SECONDS * 2 + 30


def delivery_backoff_seconds(attempt: int, retry_after: str = "") -> float:
    """The wait after try number `attempt`: doubling from CALLBACK_RETRY_DELAY_MS, capped at
    CALLBACK_RETRY_MAX_DELAY_MS, jittered so a receiver that was down is not hit by every
    retry at once, and never sooner than the receiver's Retry-After (within the cap)."""
    cap = settings.CALLBACK_RETRY_MAX_DELAY_MS / 1000
    ceiling = min(cap, settings.CALLBACK_RETRY_DELAY_MS / 1000 * 2 ** max(0, attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    wanted = _retry_after_seconds(retry_after)
    if wanted is not None:
        delay = max(delay, min(wanted, cap))
    return delay


def _retry_after_seconds(value: str) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None


class _Outcome:
    def __init__(
        self,
        *,
        status_code: int | None = None,
        error: str = "",
        excerpt: str = "",
        retry_after: str = "",
        final: bool = False,
    ) -> None:
        self.status_code = status_code
        self.error = error
        self.excerpt = excerpt
        self.retry_after = retry_after
        self.final = final

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _network_error(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer within {settings.CALLBACK_TIMEOUT_SECONDS:g}s (timed out)"
    # urllib3's reason names the host and the failure, not the URL's path or query
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return f"{type(exc).__name__}: {reason or exc}"[:500]


def _try(delivery: CallbackDelivery) -> _Outcome:
    job = delivery.job
    try:
        target = callback_target(delivery.url)
    except CallbackRefused as refused:
        return _Outcome(error=f"refused before sending: {refused.problem}", final=not refused.transient)
    body = delivery.body.encode()
    try:
        headers = webhooks.signature_headers(
            keys=webhooks.signing_secrets(client=job.client),
            msg_id=delivery.webhook_id,
            timestamp=int(time.time()),
            body=body,
            callback_secret=vault.decrypt(job.callback_secret_encrypted),
        )
    except VaultError:
        return _Outcome(
            error="a signing secret cannot be decrypted with FLICKRHUB_ENCRYPTION_KEYS; not sent",
            final=True,
        )
    headers["Content-Type"] = "application/json"
    if job.request_id:
        headers["X-Request-ID"] = job.request_id
    try:
        answer = post(target, delivery.url, body=body, headers=headers)
    except requests.RequestException as exc:
        return _Outcome(error=_network_error(exc))
    outcome = _Outcome(status_code=answer.status_code, excerpt=answer.excerpt, retry_after=answer.retry_after)
    if 300 <= answer.status_code < 400:
        outcome.error = f"HTTP {answer.status_code}: redirect to {answer.location or '?'} not followed"
    elif not outcome.delivered:
        outcome.error = f"HTTP {answer.status_code}"
    return outcome


def delivery_send(delivery_id: str, *, takeover: bool = False) -> None:
    """One try at a delivery (the `flickr_callbacks` actor's work)."""
    try:
        uuid.UUID(delivery_id)
    except ValueError:
        log.error("callback_message_malformed", delivery_id=delivery_id[:64])
        return
    structlog.contextvars.bind_contextvars(job_id=None, delivery_id=delivery_id)
    delivery = CallbackDelivery.objects.claim(delivery_id, lease_seconds=_lease_seconds(), takeover=takeover)
    if delivery is None:
        log.debug("callback_not_claimed")  # sent already, being sent, or gone
        return
    job = delivery.job
    structlog.contextvars.bind_contextvars(
        job_id=str(job.id), request_id=job.request_id or None, attempt=delivery.attempts
    )
    started_at = timezone.now()
    clock = time.monotonic()
    outcome = _try(delivery)
    duration_ms = int((time.monotonic() - clock) * 1000)
    CallbackAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        started_at=started_at,
        duration_ms=duration_ms,
        status_code=outcome.status_code,
        error=outcome.error[:500],
        response_excerpt=outcome.excerpt[:500],
    )
    facts: dict[str, Any] = {
        "host": callback_host(delivery.url),
        "status_code": outcome.status_code,
        "duration_ms": duration_ms,
    }
    if outcome.delivered:
        if CallbackDelivery.objects.mark_delivered(delivery, status_code=outcome.status_code or 0):
            log.info("callback_sent", **facts)
            metrics.callback_delivery(outcome="sent")
        return
    if outcome.final or delivery.attempts >= delivery.max_attempts:
        if CallbackDelivery.objects.give_up(delivery, status_code=outcome.status_code, error=outcome.error):
            log.warning("callback_failed", error=outcome.error, will_retry=False, **facts)
            metrics.callback_delivery(outcome="failed")
        return
    delay = delivery_backoff_seconds(delivery.attempts, outcome.retry_after)
    at = timezone.now() + timedelta(seconds=delay)
    if CallbackDelivery.objects.schedule_retry(
        delivery, at=at, status_code=outcome.status_code, error=outcome.error
    ):
        log.warning(
            "callback_failed",
            error=outcome.error,
            will_retry=True,
            next_attempt_at=at.isoformat(),
            **facts,
        )
        metrics.callback_delivery(outcome="retrying")
        if delay <= SHORT_DELAY_SECONDS:
            _publish_or_leave(delivery, delay_ms=max(1, int(delay * 1000)))


def callback_host(url: str) -> str:
    """The host of a callback URL, for logs: its path and query may carry the receiver's own
    tokens, which are none of the log's business."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def delivery_resend(delivery_id: uuid.UUID | str) -> str | None:
    """An operator's resend: the same body under the same webhook-id (a receiver that already
    has it can tell), with CALLBACK_RETRY_ATTEMPTS more tries. Returns why not, or None."""
    if not settings.CALLBACK_ENABLED:
        return "callbacks are turned off (CALLBACK_ENABLED=false)"
    more = max(1, settings.CALLBACK_RETRY_ATTEMPTS)
    if not CallbackDelivery.objects.reopen(delivery_id, extra_attempts=more):
        return "it is waiting to be sent or being sent already"
    delivery = CallbackDelivery.objects.select_related("job").get(pk=delivery_id)
    _publish_or_leave(delivery)
    log.info("callback_resend", delivery_id=str(delivery.id), job_id=str(delivery.job_id))
    return None


# --- Sweeping -------------------------------------------------------------------------------


def _publish_claimed(deliveries: Any, now: datetime, claim: Any) -> int:
    """Publishes each delivery of `deliveries` whose publication this sweeper is first to
    claim (a conditional UPDATE of `published_at`), so concurrent sweepers publish once."""
    published = 0
    for delivery_id in list(deliveries.values_list("pk", flat=True)[:1000]):
        if not claim(delivery_id):
            continue
        delivery = CallbackDelivery.objects.select_related("job").filter(pk=delivery_id).first()
        if delivery is None:
            continue
        if _publish_or_leave(delivery):
            published += 1
        else:
            CallbackDelivery.objects.filter(pk=delivery_id).update(published_at=None)
    return published


def deliveries_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Finds deliveries no message will carry and publishes them; schedules the deliveries of
    ended jobs that have none. Safe to run in several processes at once."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.JOB_REPUBLISH_AFTER_SECONDS)
    counts = {"unpublished": 0, "abandoned": 0, "unscheduled": 0}

    # 1. Written but never published (the process died, or the broker was down), and retries
    #    whose time has come that wait in the database.
    counts["unpublished"] = _publish_claimed(
        CallbackDelivery.objects.filter(state=DeliveryState.PENDING, published_at__isnull=True).filter(
            Q(next_attempt_at__isnull=True, updated_at__lt=stale) | Q(next_attempt_at__lte=now)
        ),
        now,
        lambda pk: CallbackDelivery.objects.filter(pk=pk, published_at__isnull=True).update(published_at=now),
    )
    # 2. Being sent past the lease: the worker died mid-try. The claim accepts an expired
    #    lease; published_at past lease_until marks the new message sent.
    abandoned = CallbackDelivery.objects.filter(state=DeliveryState.SENDING, lease_until__lt=now).exclude(
        published_at__gt=F("lease_until")
    )
    counts["abandoned"] = _publish_claimed(
        abandoned, now, lambda pk: abandoned.filter(pk=pk).update(published_at=now)
    )
    # 3. Ended jobs whose delivery was never written.
    if settings.CALLBACK_ENABLED:
        this_end = CallbackDelivery.objects.filter(
            job=OuterRef("pk"), job_finished_at=OuterRef("finished_at")
        )
        missing = (
            Job.objects.filter(state__in=ENDED_STATES, updated_at__lt=stale)
            .filter(updated_at__gte=now - BACKSTOP_WINDOW)
            .exclude(callback_url="")
            .filter(~Exists(this_end))
        )
        for job in missing[:1000]:
            if delivery_schedule(job) is not None:
                counts["unscheduled"] += 1

    if any(counts.values()):
        log.warning("callbacks_swept", **counts)
    return counts


def deliveries_recover_embedded() -> int:
    """Embedded mode keeps messages in memory, so at start every unfinished delivery is
    published again (a single-process hub: any `sending` one belonged to the process that
    died)."""
    CallbackDelivery.objects.filter(state=DeliveryState.SENDING).update(
        state=DeliveryState.PENDING, lease_until=None
    )
    now = timezone.now()
    count = 0
    for delivery in (
        CallbackDelivery.objects.select_related("job")
        .filter(state=DeliveryState.PENDING)
        .order_by("created_at")
    ):
        delay_ms = None
        if delivery.next_attempt_at and delivery.next_attempt_at > now:
            delay_ms = int((delivery.next_attempt_at - now).total_seconds() * 1000)
        _publish_or_leave(delivery, delay_ms=delay_ms)
        count += 1
    return count
