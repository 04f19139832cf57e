"""What the admin's front page shows an operator at a glance (reads only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccountStatus, FlickrAccount
from flickr.status import callback_failures, key_states
from flickrhub.models import WorkerHeartbeat
from flickrhub.queues import queue_depths
from jobs.models import QUEUE_OF_TARGET, Job, JobState

# A worker not heard from in this many heartbeat intervals is shown as silent.
SILENT_AFTER_BEATS = 3


def _jobs_url(**params: str) -> str:
    return f"{reverse('admin:jobs_job_changelist')}?{urlencode(params)}"


@dataclass
class QueueRow:
    name: str
    ready: int | None = None
    delayed: int | None = None
    dead: int | None = None
    workers: list[dict[str, Any]] = field(default_factory=list)
    queued_url: str = ""

    @property
    def alive(self) -> int:
        return sum(1 for w in self.workers if w["alive"])


def _heartbeats(now: datetime) -> dict[str, list[dict[str, Any]]]:
    silent_after = timedelta(seconds=max(1, settings.WORKER_HEARTBEAT_SECONDS) * SILENT_AFTER_BEATS)
    by_queue: dict[str, list[dict[str, Any]]] = {}
    # Rows of workers gone for a day are history, not news.
    for beat in WorkerHeartbeat.objects.filter(last_seen__gte=now - timedelta(days=1)):
        entry = {
            "worker_id": beat.worker_id,
            "threads": beat.threads,
            "in_progress": beat.in_progress,
            "stopping": beat.stopping,
            "last_seen": beat.last_seen,
            "seconds_ago": int((now - beat.last_seen).total_seconds()),
            "alive": now - beat.last_seen <= silent_after,
        }
        for queue in beat.queues or []:
            by_queue.setdefault(queue, []).append(entry)
    return by_queue


def dashboard(*, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    hour_ago = now - timedelta(hours=1)
    target_of_queue = {queue: str(target) for target, queue in QUEUE_OF_TARGET.items()}

    depths = queue_depths()
    heartbeats = _heartbeats(now)
    names = sorted(set(depths.queues) | set(heartbeats) | set(target_of_queue))
    queues = []
    for name in names:
        counts = depths.queues.get(name, {})
        row = QueueRow(
            name=name,
            ready=counts.get("ready"),
            delayed=counts.get("delayed"),
            dead=counts.get("dead"),
            workers=heartbeats.get(name, []),
        )
        if name in target_of_queue:
            row.queued_url = _jobs_url(target__exact=target_of_queue[name], state__exact=JobState.QUEUED)
        queues.append(row)

    recent = Job.objects.filter(created_at__gte=hour_ago)
    per_state = dict(recent.values_list("state").annotate(n=Count("pk")).order_by())
    states = [
        {
            "state": state.value,
            "count": per_state.get(state.value, 0),
            "url": _jobs_url(state__exact=state.value, created="1h"),
        }
        for state in JobState
    ]

    finished = Job.objects.filter(finished_at__gte=hour_ago, state__in=[JobState.COMPLETED, JobState.FAILED])
    finished_count = finished.count()
    failures = []
    by_class = (
        finished.filter(state=JobState.FAILED)
        .values_list("error__class")
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    for error_class, count in by_class:
        error_class = error_class or "unknown"
        failures.append(
            {
                "error_class": error_class,
                "count": count,
                "rate": count / finished_count if finished_count else 0.0,
                "url": _jobs_url(state__exact=JobState.FAILED, error_class=error_class, finished="1h"),
            }
        )

    relink = FlickrAccount.objects.filter(status=AccountStatus.NEEDS_RELINK).count()
    return {
        "now": now,
        "queues": queues,
        "broker_error": depths.error,
        "states": states,
        "finished_last_hour": finished_count,
        "failures": failures,
        "keys": key_states(),
        "relink_count": relink,
        "relink_url": f"{reverse('admin:accounts_flickraccount_changelist')}?"
        + urlencode({"status__exact": AccountStatus.NEEDS_RELINK}),
        "callback_failures": callback_failures(hours=1),
    }
