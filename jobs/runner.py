"""Running one job: claim it, call Flickr for its account, record how it ended."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.models import AccountStatus
from accounts.services import account_mark_needs_relink
from accounts.vault import VaultError
from flickr import breaker, catalog, ratelimit, response_cache
from flickr import client as flickr_client
from flickr.errors import ErrorClass, FlickrError
from flickrhub import metrics, obs
from jobs import archive, callbacks, dispatcher, job_ends, pagination, uploads, usage
from jobs.models import ACTIVE_STATES, Job, JobState, Target
from jobs.services import QUOTA_SLACK_SECONDS, job_publish

log = structlog.get_logger(__name__)

# Retries due within this many seconds travel as delayed messages; later ones wait in the
# database for the sweeper, because RabbitMQ closes a consumer that holds an unacknowledged
# (delayed) message past its consumer_timeout.
SHORT_DELAY_SECONDS = 60
# A follower of an identical call in flight looks at the leader again after about this long.
COALESCE_POLL_SECONDS = 0.25
PARKED_FOLLOW_SECONDS = 2.0
# How long a parked leader of identical calls keeps them following it (it releases them when
# it ends; they look at it again meanwhile).
PARKED_HOLD_SECONDS = 300
# The quota and circuit gauges of a consumer key are refreshed at most this often per process.
GAUGE_INTERVAL_SECONDS = 1.0
_gauged_at: dict[int, float] = {}
_gauged_lock = threading.Lock()


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
        _execute(job)
    except FlickrError as error:
        _handle_failure(job, error)


def _execute(job: Job) -> None:
    """The job's way to an answer: the cache, an identical call already in flight, the circuit
    and the quota of its consumer key, and only then Flickr."""
    creds = _credentials(job)
    if job.taken_over and not _safe_to_repeat(job):
        # The run this one took over (its worker died, or its message came back) may have
        # sent the call before it stopped. A read is simply asked again; a write or an upload
        # is not, so it cannot happen twice — the same promise as a call cut off mid-way.
        raise FlickrError(
            f"The worker running this {job.method} call stopped before recording how it went, "
            "and the call may have reached Flickr. It is not sent again, so it cannot happen "
            "twice: check on Flickr whether it took effect.",
            error_class=ErrorClass.UNKNOWN_OUTCOME,
            code="ERR_FLICKR_OUTCOME_UNKNOWN",
        )
    if job.target != Target.REST:
        if _gate(job, coalescing_key=None):
            _complete(job, _called(job, lambda: _send_file(job, creds)))
        return
    args = _as_flickr_args(job.params)
    if job.paginate:
        _walk_a_page(job, creds, args)
        return
    key = (
        response_cache.call_key(job.account_id, job.method, args)
        if catalog.is_cacheable(job.method)
        else None
    )
    shared = key is not None and job.cache_max_age != 0  # cache: false wants its own call
    if key is not None and shared:
        hit = response_cache.get(key, max_age=job.cache_max_age)
        metrics.cache_lookup(method=job.method, hit=hit is not None)
        if hit is not None:
            _complete(job, hit.flickr, from_cache=True, cache_ttl=hit.ttl_remaining)
            return
        if _follow(job, key):
            return
    coalescing_key = key if shared else None
    if not _gate(job, coalescing_key=coalescing_key):
        return
    try:
        flickr = _called(job, lambda: flickr_client.call_rest(creds, job.method, args))
    except FlickrError:
        # Identical jobs waiting on this one will make the call themselves (one of them).
        if coalescing_key is not None:
            response_cache.release(coalescing_key, str(job.id))
        raise
    if key is not None:
        response_cache.put(key, flickr)
    # The claim stays until it expires: identical jobs asked for before this answer take it.
    _complete(job, flickr)


def _walk_a_page(job: Job, creds: Any, args: dict[str, str]) -> None:
    """One page of a paginated walk; the job goes back in the queue for the next one."""
    if not _gate(job, coalescing_key=None):
        return
    page_args = pagination.page_args(args, job.progress)
    answer = _called(job, lambda: flickr_client.call_rest(creds, job.method, page_args))
    progress, finished = pagination.merge(job.method, job.progress, answer)
    if finished:
        _complete(job, pagination.result(progress), progress=progress)
    elif Job.objects.next_page(job, progress=progress):
        log.info("job_page_done", pages_done=progress["pages_done"], pages_total=progress["pages_total"])
        job_publish(job)


def _safe_to_repeat(job: Job) -> bool:
    return job.target == Target.REST and catalog.is_safe_to_repeat(job.method)


def _credentials(job: Job) -> Any:
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
        return account.credentials()
    except VaultError as exc:
        raise FlickrError(str(exc), error_class=ErrorClass.CALLER, code="ERR_TOKEN_UNREADABLE") from None


def _follow(job: Job, key: str) -> bool:
    """Coalescing. True when this job is done, or waiting on an identical job's call; False
    when it is to make the call itself. A job takes another's answer only if that answer came
    after this job was asked for: identical calls in flight at once, never an old answer."""
    leader_id: uuid.UUID | str | None = job.coalesced_with
    for _ in range(3):
        if leader_id is None:
            leader_id = response_cache.lead(key, str(job.id))
            if leader_id is None:
                return False
        leader = (
            Job.objects.filter(pk=leader_id)
            .values("state", "result", "next_attempt_at", "finished_at", "quota_parked_at")
            .first()
        )
        if leader and leader["state"] in ACTIVE_STATES:
            delay = _follow_delay(leader["next_attempt_at"], parked=leader["quota_parked_at"] is not None)
            _postpone(job, "coalesced", delay, coalesced_with=leader_id)
            return True
        if (
            leader
            and leader["state"] == JobState.COMPLETED
            and leader["result"]
            and leader["finished_at"] is not None
            and leader["finished_at"] >= job.created_at
        ):
            _complete(job, leader["result"]["flickr"], from_cache=True, coalesced_with=leader_id)
            metrics.coalesced_call()
            return True
        # The other job failed, is gone, or answered before this one was asked: lead instead.
        response_cache.release(key, str(leader_id))
        leader_id = None
    return False


def _follow_delay(leader_next_attempt: Any, *, parked: bool = False) -> float:
    # A leader parked for quota may wait a while: its followers look again less often.
    delay = (PARKED_FOLLOW_SECONDS if parked else COALESCE_POLL_SECONDS) * random.uniform(1, 1.5)
    if leader_next_attempt is not None:
        delay = max(delay, (leader_next_attempt - timezone.now()).total_seconds() + COALESCE_POLL_SECONDS)
    return delay


def _gate(job: Job, *, coalescing_key: str | None) -> bool:
    """The consumer key's circuit and quota. False when the job was put back to wait."""
    app_id = job.account.app_id
    verdict = breaker.check(app_id, job_id=str(job.id))
    _gauge_key(job)
    if not verdict.allowed:
        _wait_for_circuit(job, verdict, coalescing_key=coalescing_key)
        return False
    if settings.FLICKR_FAIR_QUEUEING:
        allowed = _fair_slot(job, coalescing_key=coalescing_key)
    else:
        allowed = _fifo_slot(job, coalescing_key=coalescing_key)
    if not allowed and verdict.probe:
        breaker.release_probe(app_id, job_id=str(job.id))
    if allowed and not verdict.probe:
        # The job may have slept until its quota slot, and the circuit opened meanwhile (in
        # another process, which this one hears of only here). Asking again costs nothing
        # when the circuit was seen closed a moment ago.
        verdict = breaker.check(app_id, job_id=str(job.id))
        if not verdict.allowed:
            _wait_for_circuit(job, verdict, coalescing_key=coalescing_key)
            return False
    job.circuit_probe = verdict.probe
    return allowed


def _wait_for_circuit(job: Job, verdict: breaker.Verdict, *, coalescing_key: str | None) -> None:
    # A quota slot the job held is spent: by the time the circuit lets it through, the slot is
    # long past, and keeping it would only log a missed slot then.
    wait = verdict.wait_seconds + random.uniform(0, 1)
    _postpone(job, "circuit_open", wait, coalescing_key=coalescing_key, quota_slot_at=None)


def _slot_wait(job: Job) -> float | None:
    """Seconds until the quota slot this job was given (negative: past it), or None when it
    has none or came too late to use it: calling then would bunch calls together."""
    if job.quota_slot_at is None:
        return None
    wait = (job.quota_slot_at - timezone.now()).total_seconds()
    if wait < -ratelimit.slot_tolerance_seconds(job.account.app_id):
        log.info("quota_slot_missed", late_ms=round(-wait * 1000))
        job.quota_slot_at = None
        return None
    return wait


def _fair_slot(job: Job, *, coalescing_key: str | None) -> bool:
    """Fair queueing (jobs/dispatcher.py): a job the dispatcher gave a slot waits the last
    moment for it and calls; any other takes a slot only if one is free now, and otherwise
    parks for the dispatcher to choose it in its turn."""
    wait = _slot_wait(job)
    if wait is not None:
        if wait > max(1.0, 2 * dispatcher.horizon_seconds()):  # not the dispatcher's: wait queued
            _postpone(job, "quota", wait, coalescing_key=coalescing_key, quota_slot_at=job.quota_slot_at)
            return False
        if wait > 0:
            time.sleep(wait)
        return True
    client = job.client
    free = ratelimit.acquire(
        job.account.app_id,
        client_id=str(client.pk),
        max_percent=client.quota_max_percent,
        max_wait=QUOTA_SLACK_SECONDS,
    )
    if free >= 0:
        return True
    if coalescing_key is not None:
        response_cache.hold(coalescing_key, str(job.id), PARKED_HOLD_SECONDS)
    if Job.objects.park(job):
        if job.quota_parked_at is None:
            usage.count(client_id=client.pk, app_id=job.account.app_id, kind="quota_waits")
        log.info("job_waiting", reason="quota", parked=True)
    return False


def _fifo_slot(job: Job, *, coalescing_key: str | None) -> bool:
    """First in, first out (FLICKR_FAIR_QUEUEING=false): the job takes the key's next slot,
    however far, and waits for it."""
    wait = _slot_wait(job)
    if wait is None:
        wait = ratelimit.reserve(job.account.app_id)
        if wait > 0:
            job.quota_slot_at = timezone.now() + timedelta(seconds=wait)
    if wait > QUOTA_SLACK_SECONDS:
        _postpone(job, "quota", wait, coalescing_key=coalescing_key, quota_slot_at=job.quota_slot_at)
        return False
    return True


def _gauge_key(job: Job) -> None:
    """The consumer key's quota and circuit, as metrics (`flickrhub_quota_remaining`, …). Reading
    them costs two Redis round trips, and a scrape comes every few seconds at most, so each
    process sets them at most once per GAUGE_INTERVAL_SECONDS per key rather than on every job."""
    app_id = job.account.app_id
    now = time.monotonic()
    with _gauged_lock:
        if now - _gauged_at.get(app_id, -GAUGE_INTERVAL_SECONDS) < GAUGE_INTERVAL_SECONDS:
            return
        _gauged_at[app_id] = now
    consumer_key = job.account.app.api_key
    metrics.circuit_state(consumer_key=consumer_key, state=breaker.state(app_id).value)
    metrics.quota_remaining(consumer_key=consumer_key, remaining=ratelimit.remaining(app_id))


def _release_db_connection() -> None:
    """With a connection pool (DB_POOL_MAX_SIZE), hands this thread's connection back while it
    waits on Flickr, so a pool far smaller than the thread count serves every call in flight.
    Without one the connection is this thread's for good: closing it would cost a reconnect."""
    if connection.settings_dict.get("OPTIONS", {}).get("pool") and not connection.in_atomic_block:
        connection.close()


def _called(job: Job, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Makes the Flickr call and tells the consumer key's circuit how it went."""
    app_id = job.account.app_id
    usage.count(client_id=job.client_id, app_id=app_id, kind="flickr_calls")
    _release_db_connection()
    try:
        answer = call()
    except FlickrError as error:
        if error.error_class in (ErrorClass.RETRY, ErrorClass.UNKNOWN_OUTCOME):
            breaker.record_failure(app_id)
        elif error.error_class is ErrorClass.KEY_DISABLED:
            breaker.record_failure(app_id, key_disabled=True)
        else:
            # Flickr answered: it is up, whatever it said.
            breaker.record_success(app_id, through_closed=not job.circuit_probe)
        raise
    breaker.record_success(app_id, through_closed=not job.circuit_probe)
    return answer


def _postpone(
    job: Job, reason: str, wait: float, *, coalescing_key: str | None = None, **fields: Any
) -> None:
    at = timezone.now() + timedelta(seconds=max(0.0, wait))
    if coalescing_key is not None:
        response_cache.hold(coalescing_key, str(job.id), wait)
    if not Job.objects.postpone(job, reason=reason, at=at, **fields):
        return
    log.info("job_waiting", reason=reason, wait_s=round(wait, 3), next_attempt_at=at.isoformat())
    if wait <= SHORT_DELAY_SECONDS:
        job_publish(job, delay_ms=max(1, int(wait * 1000)))


def _complete(
    job: Job,
    flickr: dict[str, Any],
    *,
    from_cache: bool = False,
    cache_ttl: int | None = None,
    coalesced_with: uuid.UUID | str | None = None,
    **fields: Any,
) -> None:
    result: dict[str, Any] = {"from_cache": from_cache, "flickr": flickr}
    if from_cache:
        # The original's answer for a cache hit; an identical call's answer is reported alike.
        result["observability"] = {"ok": True, "cached": True}
        if coalesced_with is not None:
            result["coalesced_with"] = str(coalesced_with)
        else:
            result["cache_ttl_seconds"] = cache_ttl
    else:
        # Whether the Flickr call's log event reached the external log sink (OBS_API_URL).
        result["observability"] = obs.call_report(job_id=str(job.id))
    if Job.objects.complete(job, result=result, from_cache=from_cache, **fields):
        job_ends.announce(job.id, publish=job.awaited)
        uploads.unstage(job.upload_name)
        log.info("job_completed", duration_ms=_ms_since(job.started_at), from_cache=from_cache)
        _count(job, "completed")
        if from_cache:
            usage.count(client_id=job.client_id, app_id=job.account.app_id, kind="answered_without_flickr")
        callbacks.delivery_schedule(job)


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
        job_ends.announce(job.id, publish=job.awaited)
        uploads.unstage(job.upload_name)
        log.warning(
            "job_failed",
            error_code=error.code,
            error_class=error.error_class.value,
            flickr_code=error.flickr_code,
            duration_ms=_ms_since(job.started_at),
        )
        archive.job_failed_for_good(job, details)
        callbacks.delivery_schedule(job)
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
