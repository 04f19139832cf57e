"""Recording, off the request path, that an accepted job's message was published.

`published_at` exists for one reader: the sweeper, which publishes again the `queued` jobs
that have none after JOB_REPUBLISH_AFTER_SECONDS (the process died between commit and publish).
Writing it at once cost every enqueue a second statement and commit after the broker's
confirm. Here the web process notes the ids and sets them all in one UPDATE about every
FLUSH_SECONDS, from a background thread. Why that keeps every promise:

- A crash between commit and publish leaves no mark, as before: the sweeper publishes the job.
- A crash after the confirm but before the flush also leaves no mark: if the job is still
  `queued` after JOB_REPUBLISH_AFTER_SECONDS, the sweeper sends a second message, and the claim
  runs the job once. Only jobs accepted in the last second of a dying process can get one.
- A job a worker has already claimed needs no mark (its message obviously arrived), and must
  not get one: a retry or a wait it recorded since (published_at NULL, for the sweeper to find)
  would be hidden. So the UPDATE only touches rows still `queued` and never started.
- A failed flush keeps its ids for the next one (at most MAX_PENDING); ids dropped beyond that
  only risk the harmless second message above.
"""

from __future__ import annotations

import uuid

import structlog
from django.db import DatabaseError
from django.utils import timezone

from flickrhub.batching import Batch

log = structlog.get_logger(__name__)

FLUSH_SECONDS = 0.5
MAX_PENDING = 100_000
_CHUNK = 1000


def _mark(batch: Batch[uuid.UUID], ids: list[uuid.UUID]) -> int:
    from jobs.models import Job, JobState  # models import settings-dependent apps

    marked = 0
    now = timezone.now()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        try:
            marked += Job.objects.filter(
                pk__in=chunk, state=JobState.QUEUED, started_at__isnull=True, published_at__isnull=True
            ).update(published_at=now)
        except DatabaseError as exc:
            log.warning("job_publish_marks_deferred", count=len(ids) - start, error=type(exc).__name__)
            batch.put_back(ids[start:])
            break
    return marked


marks: Batch[uuid.UUID] = Batch(
    "published-marks", every=FLUSH_SECONDS, write=_mark, max_pending=MAX_PENDING, database=True
)
# Records, soon, that a job's message was confirmed by the broker.
note = marks.note
# Writes the noted marks now; returns how many rows it marked.
flush = marks.flush
discard = marks.discard
