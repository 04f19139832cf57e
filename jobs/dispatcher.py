"""The fair dispatcher: shares each Flickr key's quota among API clients, then among accounts.

RabbitMQ queues are first in, first out: with the quota as the only limit, a client that
queues 50,000 calls holds every other client back until they are done. So when a key's calls
must wait for quota, they wait in the database instead — parked (`Job.objects.parked()`) —
and one dispatcher per hub releases them at the quota's rate, choosing the next one fairly:

- among the API clients with parked jobs, by stride scheduling (a weighted round robin that
  stays exact with fractional weights): each client has a *pass*; the client with the lowest
  pass goes next and its pass grows by 1 / its weight (`ApiClient.quota_weight`), so over any
  stretch of time clients get calls in proportion to their weights;
- within a client, among its accounts with parked jobs, the same with equal weights;
- within an account, urgent jobs first (`"priority": "high"`, or a caller waiting with
  `?wait`), oldest first; a normal job that has waited FLICKR_PRIORITY_AGING_SECONDS counts
  as urgent, so bulk work never starves.

A client that was idle rejoins at the current virtual time — it gets its share at once but no
credit for the time it was away, so an idle client's share goes to the busy ones while it is
idle and comes back the moment it has work. A client capped to a share of the key
(`ApiClient.quota_max_percent`) has a budget of its own in the limiter: when it is spent, the
client is passed over and its turn goes to the others.

The dispatcher takes slots from the same limiter as everything else (flickr/ratelimit.py), only
a short horizon ahead (twice its interval), and publishes each chosen job at once with its
slot; the worker waits the last few hundred milliseconds and calls. Since the horizon is always
taken while jobs are parked, a new job finds no free slot and parks too: arrival order buys
nothing. When demand is below the quota nothing is parked and jobs run straight through.

Cache hits and identical calls in flight cost no quota, so they are settled before the quota
is asked: they are never parked.

One process dispatches at a time (a lease renewed every two seconds; another worker takes
over within about ten seconds if it dies). Its fairness state lives in memory: a new dispatcher starts every
client even, which is fair.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dramatiq
import structlog
from django.conf import settings
from django.db import close_old_connections
from django.db.models import BooleanField, Case, Count, Q, When
from django.utils import timezone

from accounts.models import ApiClient
from flickr import ratelimit
from jobs.models import Job, Priority
from jobs.services import job_publish

log = structlog.get_logger(__name__)

LEASE_NAME = "quota_dispatcher"


def horizon_seconds() -> float:
    """How far ahead the dispatcher takes slots: far enough that a slot is always taken
    between two of its looks, so new jobs cannot get ahead of parked ones."""
    return 2 * settings.FLICKR_DISPATCH_INTERVAL_MS / 1000


def _urgent(now: datetime) -> Q:
    aged = now - timedelta(seconds=settings.FLICKR_PRIORITY_AGING_SECONDS)
    return Q(priority=Priority.HIGH) | Q(quota_parked_at__lt=aged)


@dataclass
class _Queue:
    """The parked jobs of one client: per account, [urgent, normal] counts."""

    accounts: dict[str, list[int]] = field(default_factory=dict)

    def waiting(self) -> bool:
        return any(sum(counts) for counts in self.accounts.values())


class FairShare:
    """Stride scheduling over clients, then over a client's accounts, for one consumer key.
    `choose` names the next (client, account, urgent) without changing anything; `charge`
    records that it was served."""

    def __init__(self) -> None:
        self._client_pass: dict[str, float] = {}
        self._clock = 0.0  # the pass of the client served last: the virtual time
        self._account_pass: dict[tuple[str, str], float] = {}
        self._account_clock: dict[str, float] = {}

    def choose(self, queues: dict[str, _Queue], *, skip: set[str]) -> tuple[str, str, bool] | None:
        clients = [c for c, queue in queues.items() if c not in skip and queue.waiting()]
        if not clients:
            return None
        for c in clients:  # back from idle: even with the others, no credit for the time away
            self._client_pass[c] = max(self._client_pass.get(c, self._clock), self._clock)
        client = min(clients, key=lambda c: (self._client_pass[c], c))
        accounts = queues[client].accounts
        urgent = any(counts[0] for counts in accounts.values())
        column = 0 if urgent else 1
        clock = self._account_clock.get(client, 0.0)
        candidates = [a for a, counts in accounts.items() if counts[column] > 0]
        for a in candidates:
            self._account_pass[(client, a)] = max(self._account_pass.get((client, a), clock), clock)
        account = min(candidates, key=lambda a: (self._account_pass[(client, a)], a))
        return client, account, urgent

    def charge(self, client: str, account: str, *, weight: int) -> None:
        self._clock = self._client_pass[client]
        self._client_pass[client] += 1 / max(1, weight)
        self._account_clock[client] = self._account_pass[(client, account)]
        self._account_pass[(client, account)] += 1


class Dispatcher:
    """Grants quota slots to parked jobs, fairly, one consumer key at a time."""

    def __init__(self) -> None:
        self._shares: dict[int, FairShare] = defaultdict(FairShare)

    def dispatch(self) -> int:
        """One look at every key's parked jobs; returns how many were given a slot."""
        now = timezone.now()
        urgent = _urgent(now)
        rows = (
            Job.objects.parked()
            .annotate(urgent=Case(When(urgent, then=True), default=False, output_field=BooleanField()))
            .values_list("account__app_id", "client_id", "account_id", "urgent")
            .annotate(n=Count("pk"))
            .order_by()
        )
        backlog: dict[int, dict[str, _Queue]] = defaultdict(dict)
        for app_id, client_id, account_id, is_urgent, n in rows:
            queue = backlog[app_id].setdefault(str(client_id), _Queue())
            queue.accounts.setdefault(str(account_id), [0, 0])[0 if is_urgent else 1] += n
        if not backlog:
            return 0
        client_ids = {c for queues in backlog.values() for c in queues}
        settings_of = {
            str(pk): (weight, cap)
            for pk, weight, cap in ApiClient.objects.filter(pk__in=client_ids).values_list(
                "pk", "quota_weight", "quota_max_percent"
            )
        }
        granted = 0
        for app_id, queues in backlog.items():
            granted += self._dispatch_key(app_id, queues, settings_of, urgent)
        return granted

    def _dispatch_key(
        self,
        app_id: int,
        queues: dict[str, _Queue],
        settings_of: dict[str, tuple[int, int | None]],
        urgent: Q,
    ) -> int:
        share = self._shares[app_id]
        horizon = horizon_seconds()
        picks: dict[tuple[str, str, bool], list[datetime]] = defaultdict(list)
        capped: set[str] = set()
        while (choice := share.choose(queues, skip=capped)) is not None:
            client, account, is_urgent = choice
            weight, cap = settings_of.get(client, (1, None))
            wait = ratelimit.acquire(app_id, client_id=client, max_percent=cap, max_wait=horizon)
            if wait == ratelimit.NO_SLOT:
                break
            if wait == ratelimit.CLIENT_CAPPED:
                capped.add(client)
                continue
            share.charge(client, account, weight=weight)
            queues[client].accounts[account][0 if is_urgent else 1] -= 1
            picks[choice].append(timezone.now() + timedelta(seconds=wait))
        granted = 0
        for (client, account, is_urgent), slots in picks.items():
            jobs = (
                Job.objects.parked()
                .filter(urgent if is_urgent else ~urgent)
                .filter(client_id=uuid.UUID(client), account_id=int(account))
                .order_by("quota_parked_at", "created_at")
                .only("id", "target", "request_id")[: len(slots)]
            )
            for job, slot_at in zip(jobs, slots, strict=False):
                granted += _release(job, slot_at)
        return granted


def _release(job: Job, slot_at: datetime) -> int:
    if not Job.objects.grant(job.pk, slot_at=slot_at):
        return 0  # no longer parked (retried or cancelled meanwhile): the slot goes unused
    try:
        job_publish(job)
    except dramatiq.errors.BrokerConnectionError:
        # Its slot passes unused; the sweeper publishes it (it has a time now) and the worker,
        # too late for the slot, parks it again in its old place.
        Job.objects.filter(pk=job.pk).update(published_at=None)
        log.warning("quota_release_unpublished", job_id=str(job.pk))
        return 0
    return 1


class DispatcherThread(threading.Thread):
    """Runs the dispatcher in a worker process while it holds the lease; every worker process
    runs one, so the role moves to another when the holder dies."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="flickrhub-dispatcher", daemon=True)
        self.interval = interval
        self._stop_event = threading.Event()
        self._dispatcher = Dispatcher()

    # The role is held for LEASE_SECONDS and renewed every RENEW_SECONDS, by the clock rather
    # than by looks: a look slowed down by a busy machine must not let the lease lapse, or two
    # dispatchers would take turns (each starting its shares afresh).
    LEASE_SECONDS = 10.0
    RENEW_SECONDS = 2.0

    def run(self) -> None:
        from flickrhub.leases import lease_keep

        holding = False
        renewed = 0.0
        wait = 0.0  # the first look at once: a worker started with jobs parked need not idle
        while not self._stop_event.wait(wait):
            try:
                if not holding or time.monotonic() - renewed >= self.RENEW_SECONDS:
                    was = holding
                    holding = lease_keep(name=LEASE_NAME, seconds=self.LEASE_SECONDS)
                    renewed = time.monotonic()
                    if holding and not was:
                        self._dispatcher = Dispatcher()
                        log.info("quota_dispatcher_started")
                if holding:
                    self._dispatcher.dispatch()
            except Exception:  # the dispatcher must outlive a database or Redis blip
                log.exception("quota_dispatch_failed")
            finally:
                close_old_connections()
            wait = self.interval if holding else self.RENEW_SECONDS

    def stop(self) -> None:
        self._stop_event.set()
