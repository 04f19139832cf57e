"""Queue many jobs fast, for the rows that measure how the workers drain a backlog.

Through the API a 20,000-job backlog takes minutes to build on a small machine, and how it was
built does not change how it drains: the rows are written as `job_enqueue` writes them and,
in the production shape, their messages are published exactly as `job_publish` publishes them
(publisher confirms on). In the embedded default they are left unpublished: `manage.py serve`
publishes every unfinished job when it starts.

    python -m bench.seed --user-id UUID --count 20000 --prefix t0 [--publish]
"""

from __future__ import annotations

import argparse
import os
import uuid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user-id", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--method", default="flickr.test.echo")
    parser.add_argument("--publish", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flickrhub.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.utils import timezone

    from accounts.models import FlickrAccount
    from jobs.models import Job
    from jobs.tasks import ACTOR_OF_QUEUE

    account = FlickrAccount.objects.select_related("client").get(user_id=args.user_id)
    actor = ACTOR_OF_QUEUE["flickr_rest"]
    batch = 1000
    for start in range(0, args.count, batch):
        now = timezone.now()
        jobs = [
            Job(
                id=uuid.uuid4(),
                client=account.client,
                account=account,
                method=args.method,
                params={"bench_id": f"{args.prefix}-{n}"},
                max_attempts=max(1, settings.JOB_RETRY_ATTEMPTS),
                request_id=uuid.uuid4().hex,
                published_at=now if args.publish else None,
            )
            for n in range(start, min(start + batch, args.count))
        ]
        Job.objects.bulk_create(jobs)
        if args.publish:
            for job in jobs:
                actor.send_with_options(args=(str(job.id),), kwargs={"request_id": job.request_id})


if __name__ == "__main__":
    main()
