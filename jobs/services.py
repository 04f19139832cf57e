"""Writes on jobs: enqueue, publish, and the sweeper that makes sure nothing accepted is lost."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any

import dramatiq
import structlog
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import lookups, vault
from accounts.models import AccountStatus, ApiClient, FlickrAccount
from accounts.vault import VaultError
from flickr import catalog, ratelimit, response_cache
from flickrhub import metrics, sqlrows
from jobs import background_publish, callbacks, job_ends, published_marks, uploads, usage
from jobs.models import (
    ACTIVE_STATES,
    FINAL_STATES,
    PARKED,
    QUEUE_OF_TARGET,
    Job,
    JobState,
    Priority,
    Target,
    job_with_relations,
)

log = structlog.get_logger(__name__)

# A quota slot this close counts as free: taken now rather than waited for (here and in
# jobs/runner.py).
QUOTA_SLACK_SECONDS = 0.005


class QueueUnavailable(Exception):
    """The broker did not take the message; the job was not accepted."""


class AccountGone(Exception):
    """The account (or its API client) was deleted after the request read it: its job's INSERT
    failed on the foreign key, and nothing was accepted."""


class QueueBusy(Exception):
    """The client already has as many unfinished jobs as it may."""

    def __init__(self, in_flight: int) -> None:
        super().__init__(in_flight)
        self.in_flight = in_flight
        # Roughly how long the quota takes to work off a hundredth of the cap.
        per_second = max(1, settings.FLICKR_QUOTA_PER_HOUR) / 3600
        self.retry_after = max(1, min(300, int(settings.JOB_MAX_IN_FLIGHT_PER_CLIENT / 100 / per_second)))


def job_publish(job: Job, *, delay_ms: int | None = None, mark_later: bool = False) -> None:
    """Hands the job's message to its queue and records that it did. With RabbitMQ, publisher
    confirms make this return only once the broker has the message. `mark_later` (enqueue)
    leaves the record to a batched UPDATE shortly after (jobs/published_marks.py says why that
    is safe) instead of a statement of its own on the request path."""
    from jobs.tasks import ACTOR_OF_QUEUE  # the actors import the runner, which imports us

    actor = ACTOR_OF_QUEUE[QUEUE_OF_TARGET[Target(job.target)]]
    actor.send_with_options(
        args=(str(job.id),),
        kwargs={"request_id": job.request_id},
        delay=delay_ms if delay_ms and delay_ms > 0 else None,
    )
    if mark_later:
        published_marks.note(job.id)
        return
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
    priority: str = Priority.NORMAL,
    answer_from_cache: bool = False,
    awaited: bool = False,
) -> Job:
    """Accepts a Flickr call: the row is committed first, then the message is published, so a
    crash in between leaves a `queued` row that the sweeper publishes — never a message about
    a job that does not exist, and never an accepted job that nobody will run. While the broker
    is known to take messages, the publish is left to this process's publisher thread unless
    the caller waits for the job (jobs/background_publish.py says why that is safe). An upload's
    file is staged before the row is written and removed again if the job is not accepted.

    With `answer_from_cache` (the caller waits for the answer), a read whose answer is in the
    response cache is answered here: the job is written already completed from the cache, as a
    worker would have completed it, and no message is sent. `awaited`: the caller waits for the
    job's end (`job_wait`), so its worker announces it."""
    _check_in_flight(client, adding=1)
    if answer_from_cache and photo is None and not paginate:
        hit = _cached_answer(account=account, method=method, params=params, cache_max_age=cache_max_age)
        if hit is not None:
            return _job_completed_from_cache(
                hit,
                client=client,
                account=account,
                method=method,
                params=params,
                callback_url=callback_url,
                callback_secret=callback_secret,
                meta=meta,
                request_id=request_id,
                cache_max_age=cache_max_age,
                priority=priority,
            )
    parked = _parks_at_once(account, method, target=target, cache_max_age=cache_max_age, paginate=paginate)
    job_id = uuid.uuid4()
    staged = uploads.stage(photo, job_id) if photo is not None else ""
    try:
        # One INSERT in autocommit is its own transaction: an atomic block around it only added
        # a BEGIN and a COMMIT round trip. It must be committed before the publish below, so
        # this is never called inside a transaction (ATOMIC_REQUESTS is off).
        job = Job(
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
            priority=priority,
            awaited=awaited,
            **_parked_fields(parked),
        )
        sqlrows.insert(job)  # Job.objects.create without compiling the INSERT each time
    except IntegrityError:
        uploads.unstage(staged)
        raise _account_gone() from None
    except BaseException:
        uploads.unstage(staged)
        raise
    try:
        if parked:
            usage.count(client_id=client.pk, app_id=account.app_id, kind="quota_waits")
        elif awaited or not background_publish.offer(job):
            job_publish(job, mark_later=True)
            background_publish.published()
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


# A key found with a free quota slot is taken to have one for this long, so enqueues do not
# each ask Redis: a job let through meanwhile that finds no slot is parked by its worker
# instead (the same place, one message later).
PARKS_LOOK_SECONDS = 0.2
_slot_free_at: dict[int, float] = {}


def _parks_at_once(
    account: FlickrAccount,
    method: str,
    *,
    target: str,
    cache_max_age: int | None,
    paginate: bool,
    room: dict[int, int] | None = None,
) -> bool:
    """With fair queueing, a job whose key has no free quota slot parks in the database for
    the dispatcher (jobs/dispatcher.py) instead of going through the queue only to find that
    out — a flood of 10,000 jobs would otherwise stand in the queue before the jobs the
    dispatcher releases. A read the cache may answer goes through: it may need no quota.

    A batch passes `room`: per key, how many of its calls may still go through, asked once per
    batch. If the key has a free slot now, as many go as it has slots free now or in the next
    PARKS_LOOK_SECONDS (what single enqueues get in that time); the rest park at once. Letting
    a whole batch through because one slot was free sent hundreds of jobs through the queue to
    be parked by the workers, and the jobs the dispatcher released meanwhile waited behind them
    and missed their slots. A key whose quota is far above what the workers can do still lets
    a whole batch through."""
    if not settings.FLICKR_FAIR_QUEUEING:
        return False
    if target == Target.REST and not paginate and cache_max_age != 0 and catalog.is_cacheable(method):
        return False
    app_id = account.app_id
    if room is not None:
        if app_id not in room:
            room[app_id] = ratelimit.free_slots(
                app_id, within=PARKS_LOOK_SECONDS, first_within=QUOTA_SLACK_SECONDS
            )
        if room[app_id] <= 0:
            return True
        room[app_id] -= 1
        return False
    now = time.monotonic()
    if now - _slot_free_at.get(app_id, -PARKS_LOOK_SECONDS) < PARKS_LOOK_SECONDS:
        return False
    answer = ratelimit.next_slot_seconds(app_id) > QUOTA_SLACK_SECONDS
    if not answer:
        _slot_free_at[app_id] = now
    return answer


def _parked_fields(parked: bool) -> dict[str, Any]:
    return {"wait_reason": "quota", "quota_parked_at": timezone.now()} if parked else {}


def _cached_answer(
    *, account: FlickrAccount, method: str, params: dict[str, Any], cache_max_age: int | None
) -> response_cache.Hit | None:
    """The cached answer a worker would complete this REST call with, if there is one. Only
    when the worker would get that far: a cacheable read that accepts a cached answer, for an
    account that is active and whose token can be read (else the worker fails the job, and
    it goes the usual way to do so)."""
    from jobs.runner import _as_flickr_args  # the runner imports this module

    if cache_max_age == 0 or not catalog.is_cacheable(method) or account.status != AccountStatus.ACTIVE:
        return None
    hit = response_cache.get(
        response_cache.call_key(account.id, method, _as_flickr_args(params)), max_age=cache_max_age
    )
    if hit is None:
        return None  # the worker looks again, and counts the miss
    try:
        account.credentials()  # what "using" the account means: it refreshes last_used_at
    except VaultError:
        return None
    metrics.cache_lookup(method=method, hit=True)
    return hit


def _job_completed_from_cache(
    hit: response_cache.Hit,
    *,
    client: ApiClient,
    account: FlickrAccount,
    method: str,
    params: dict[str, Any],
    callback_url: str,
    callback_secret: str,
    meta: dict[str, Any] | None,
    request_id: str,
    cache_max_age: int | None,
    priority: str,
) -> Job:
    """Writes a job that a cache hit answers, in the state a worker serving the hit leaves it:
    `completed` after one attempt, `from_cache` with the same returnvalue, its callback
    scheduled and the same metrics and log lines. One INSERT, no message: publishing one for
    the claim to drop would cost a broker confirm and two UPDATEs for nothing. Nothing is
    left for the sweeper either: it only looks at unfinished jobs."""
    from jobs.runner import _count  # the runner imports this module

    now = timezone.now()
    job = Job(
        client=client,
        account=account,
        target=Target.REST,
        method=method,
        params=params,
        state=JobState.COMPLETED,
        attempts=1,
        max_attempts=max(1, settings.JOB_RETRY_ATTEMPTS),
        # the returnvalue of runner._complete for a hit
        result={
            "from_cache": True,
            "flickr": hit.flickr,
            "observability": {"ok": True, "cached": True},
            "cache_ttl_seconds": hit.ttl_remaining,
        },
        from_cache=True,
        callback_url=callback_url,
        callback_secret_encrypted=vault.encrypt(callback_secret) if callback_secret else "",
        meta=meta,
        request_id=request_id,
        cache_max_age=cache_max_age,
        priority=priority,
        created_at=now,
        updated_at=now,
        started_at=now,
        finished_at=now,
    )
    sqlrows.insert(job)
    metrics.job_enqueued(queue=job.queue_name, method=method)
    context = {
        "job_id": str(job.id),
        "method": method,
        "queue": job.queue_name,
        "user_id": str(account.user_id),
    }
    log.info("job_enqueued", **context)
    log.info("job_completed", **context, attempt=1, duration_ms=0.0, from_cache=True, answered_by="web")
    _count(job, "completed")
    usage.count(client_id=client.pk, app_id=account.app_id, kind="answered_without_flickr")
    callbacks.delivery_schedule(job)
    return job


# The in-flight cap's last look per (client, cap) in this process: when it was, and how many
# jobs the process may still accept for that client before looking again.
_room: dict[tuple[Any, int], tuple[float, int]] = {}
_room_lock = threading.Lock()
ROOM_LOOK_SECONDS = 1.0


def _check_in_flight(client: ApiClient, *, adding: int) -> None:
    """The in-flight cap. A soft cap: two requests racing past it both get in, which is
    harmless. Counting a client's unfinished jobs reads every one of them (10,000 index entries
    at the default cap, on every enqueue), so the cap is looked at in two steps:

    - Whether at most half the cap is unfinished: if so, this process may accept up to the
      other half before it needs to look again (at most ROOM_LOOK_SECONDS later), and the
      enqueues in between read nothing. One process alone can never pass the cap; several
      accepting for one client at once are the race the soft cap allows.
    - Otherwise, on every enqueue, whether there is a job at offset cap - adding: that read
      stops there. The exact count is read only to say it in a refusal."""
    cap = settings.JOB_MAX_IN_FLIGHT_PER_CLIENT
    key = (client.pk, cap)
    now = time.monotonic()
    with _room_lock:
        looked_at, budget = _room.pop(key, (0.0, 0))
        if now - looked_at < ROOM_LOOK_SECONDS and budget >= adding:
            _room[key] = (looked_at, budget - adding)
            return
    room = cap - adding
    half = cap // 2
    unfinished = Job.objects.filter(client=client, state__in=ACTIVE_STATES).order_by()
    if 0 < adding <= cap - half and not unfinished[half : half + 1].exists():
        with _room_lock:
            _room[key] = (now, cap - half - adding)  # at most `half` were unfinished
        return
    if room < 0 or unfinished[room : room + 1].exists():
        usage.count(client_id=client.pk, app_id=None, kind="rejections", n=adding)
        raise QueueBusy(unfinished.count())


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
    priority: str = Priority.NORMAL
    paginate: bool = False


def jobs_enqueue_batch(*, client: ApiClient, calls: list[Call], request_id: str = "") -> list[Job]:
    """Accepts a batch of REST calls: all rows in one transaction, then one message each. If the
    broker refuses the first message, nothing is accepted (503). If it goes away part-way, the
    rest are accepted all the same: their rows are committed and the sweeper publishes them."""
    _check_in_flight(client, adding=len(calls))
    room: dict[int, int] = {}  # per key, how many calls may go through: asked once per batch
    parked = [
        _parks_at_once(
            c.account,
            c.method,
            target=Target.REST,
            cache_max_age=c.cache_max_age,
            paginate=c.paginate,
            room=room,
        )
        for c in calls
    ]
    try:
        with transaction.atomic():
            jobs = _batch_rows(client, calls, parked, request_id)
    except IntegrityError:
        raise _account_gone() from None
    waits = Counter(job.account.app_id for job, park in zip(jobs, parked, strict=True) if park)
    for app_id, n in waits.items():
        usage.count(client_id=client.pk, app_id=app_id, kind="quota_waits", n=n)
    unparked = [job for job, park in zip(jobs, parked, strict=True) if not park]
    for index, job in enumerate(unparked):
        try:
            job_publish(job, mark_later=True)
            background_publish.published()
        except dramatiq.errors.BrokerConnectionError as exc:
            if index == 0:
                Job.objects.filter(pk__in=[j.pk for j in jobs], state=JobState.QUEUED).delete()
                log.warning("batch_enqueue_broker_unavailable", count=len(jobs), error=type(exc).__name__)
                raise QueueUnavailable(str(exc)) from None
            log.warning("batch_publish_incomplete", published=index, accepted=len(jobs))
            break
    log.info("jobs_enqueued", count=len(jobs), queue="flickr_rest")
    return jobs


def _batch_rows(client: ApiClient, calls: list[Call], parked: list[bool], request_id: str) -> list[Job]:
    return Job.objects.bulk_create(
        [
            Job(
                client=client,
                account=call.account,
                target=Target.REST,
                method=call.method,
                params=call.params,
                callback_url=call.callback_url,
                callback_secret_encrypted=vault.encrypt(call.callback_secret) if call.callback_secret else "",
                meta=call.meta,
                request_id=request_id,
                max_attempts=max(1, settings.JOB_RETRY_ATTEMPTS),
                cache_max_age=call.cache_max_age,
                priority=call.priority,
                paginate=call.paginate,
                **_parked_fields(park),
            )
            for call, park in zip(calls, parked, strict=True)
        ]
    )


def _account_gone() -> AccountGone:
    """A job's INSERT failed on its foreign keys: its account or client was deleted since this
    process read it, maybe from what accounts/lookups.py kept. Forgets what was kept, so the
    caller's next request reads again and is told the account is unknown."""
    lookups.forget()
    log.info("job_enqueue_account_gone")
    return AccountGone()


def job_wait(job_id: uuid.UUID | str, seconds: float, *, awaited: bool = False) -> Job | None:
    """Waits for a job to end or `seconds` to pass (`?wait=`); returns its last state. The
    worker that ends the job announces it (jobs/job_ends.py), which wakes this wait at once;
    the row is read again every API_WAIT_POLL_MS all the same, so an announcement lost (Redis
    down, a listener reconnecting) only delays the answer.

    A worker announces only the ends of jobs marked `awaited` (most jobs have nobody waiting,
    and each announcement is a Redis round trip): the enqueue marks the jobs it will wait for
    (`awaited=True` here), any other wait marks its job first. Marked before the first look,
    and both are UPDATEs of the row, so the worker's end either comes after the mark and is
    announced, or before it and is found by the look."""
    deadline = time.monotonic() + seconds
    poll = max(0.01, settings.API_WAIT_POLL_MS / 1000)
    with job_ends.watch(job_id) as ended:
        if not awaited:
            Job.objects.filter(pk=job_id, state__in=ACTIVE_STATES, awaited=False).update(awaited=True)
        while True:
            ended.clear()  # before the look: an end announced after it wakes the wait below
            # The whole row at each look: one statement, and the look that finds the job ended
            # is also the answer's read (the looks before it come only each poll or wakeup).
            job = job_with_relations(job_id)
            left = deadline - time.monotonic()
            if job is None or job.state in FINAL_STATES or left <= 0:
                return job
            ended.wait(min(poll, left))


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
    #    Jobs parked for quota are the dispatcher's to publish.
    counts["queued"] = _publish_unpublished(
        Job.objects.filter(state=JobState.QUEUED, published_at__isnull=True, created_at__lt=stale).exclude(
            PARKED
        ),
        now,
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
    for job in Job.objects.filter(state__in=[*ACTIVE_STATES]).exclude(PARKED).order_by("created_at"):
        delay_ms = None
        if job.state == JobState.RETRYING and job.next_attempt_at and job.next_attempt_at > now:
            delay_ms = int((job.next_attempt_at - now).total_seconds() * 1000)
        job_publish(job, delay_ms=delay_ms)
        count += 1
    return count
