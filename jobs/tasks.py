"""The Dramatiq actors: one per queue, each taking a job id and handing it to the runner.

Messages carry only the job id and the request id; the database row is the truth. Dramatiq's
own retries are for the unexpected (the database briefly gone): Flickr's failures are retried
by the runner through the row's state, with backoff, and never by re-running a claimed job.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from django.conf import settings
from dramatiq.middleware import CurrentMessage

from jobs import callbacks, runner

_ACTOR_OPTIONS: dict[str, Any] = {
    # Explicit, because Dramatiq's default is 20 retries spread over days.
    "max_retries": 5,
    "min_backoff": 1_000,
    "max_backoff": 60_000,
}


def _redelivered() -> bool:
    # RabbitMQ sets `redelivered` when the consumer that held the message went away without
    # acknowledging it: that worker is gone, and this one may take its job over. So may a
    # Dramatiq retry of the message: the run before it raised (the database went away
    # mid-job, say) and is over, though the row still says `running`.
    message = CurrentMessage.get_current_message()
    if message is None:
        return False
    return bool(getattr(message, "redelivered", False)) or message.options.get("retries", 0) > 0


@dramatiq.actor(queue_name="flickr_rest", time_limit=5 * 60_000, **_ACTOR_OPTIONS)
def flickr_rest(job_id: str, request_id: str = "") -> None:
    runner.job_run(job_id, takeover=_redelivered())


# Sending a big file takes longer than a REST call: a longer lease keeps the sweeper from
# handing a job that is still uploading to a second worker.
@dramatiq.actor(queue_name="flickr_upload", time_limit=60 * 60_000, **_ACTOR_OPTIONS)
def flickr_upload(job_id: str, request_id: str = "") -> None:
    runner.job_run(job_id, takeover=_redelivered(), lease_seconds=settings.JOB_UPLOAD_LEASE_SECONDS)


@dramatiq.actor(queue_name="flickr_replace", time_limit=60 * 60_000, **_ACTOR_OPTIONS)
def flickr_replace(job_id: str, request_id: str = "") -> None:
    runner.job_run(job_id, takeover=_redelivered(), lease_seconds=settings.JOB_UPLOAD_LEASE_SECONDS)


# Callbacks have their own queue and workers, so a slow receiver never holds a Flickr worker.
# The time limit covers the connect and answer timeouts of one try, with room to record it.
@dramatiq.actor(
    queue_name="flickr_callbacks",
    time_limit=int((settings.CALLBACK_TIMEOUT_SECONDS * 2 + 30) * 1000),
    **_ACTOR_OPTIONS,
)
def flickr_callback(delivery_id: str, request_id: str = "") -> None:
    callbacks.delivery_send(delivery_id, takeover=_redelivered())


ACTOR_OF_QUEUE = {
    "flickr_rest": flickr_rest,
    "flickr_upload": flickr_upload,
    "flickr_replace": flickr_replace,
}
