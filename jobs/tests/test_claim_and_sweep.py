"""Nothing accepted is lost and nothing runs twice: the claim and the sweeper."""

from __future__ import annotations

from datetime import timedelta

import dramatiq
from django.utils import timezone

from jobs import published_marks
from jobs.models import Job, JobState
from jobs.services import job_enqueue, jobs_recover_embedded, jobs_sweep


def make_job(world, **fields) -> Job:
    return job_enqueue(
        client=world.alpha.model,
        account=world.alpha.accounts[0],
        method="flickr.test.echo",
        params={},
        **fields,
    )


def test_only_one_claim_wins(world, stub_broker):
    job = make_job(world)
    first = Job.objects.claim(job.id, lease_seconds=60, takeover=False)
    second = Job.objects.claim(job.id, lease_seconds=60, takeover=False)
    assert first is not None and second is None
    assert Job.objects.get(pk=job.pk).attempts == 1


def test_a_finished_job_cannot_be_claimed_even_by_a_redelivery(world, stub_broker):
    job = make_job(world)
    run = Job.objects.claim(job.id, lease_seconds=60, takeover=False)
    assert Job.objects.complete(run, result={"flickr": {}})
    assert Job.objects.claim(job.id, lease_seconds=60, takeover=True) is None


def test_a_stale_run_cannot_overwrite_the_run_that_took_over(world, stub_broker):
    job = make_job(world)
    dead = Job.objects.claim(job.id, lease_seconds=60, takeover=False)
    alive = Job.objects.claim(job.id, lease_seconds=60, takeover=True)  # redelivered message
    assert alive is not None
    assert not Job.objects.complete(dead, result={"from": "dead"})
    assert Job.objects.complete(alive, result={"from": "alive"})
    assert Job.objects.get(pk=job.pk).result == {"from": "alive"}


def test_an_expired_lease_makes_a_running_job_claimable(world, stub_broker):
    job = make_job(world)
    Job.objects.claim(job.id, lease_seconds=60, takeover=False)
    assert Job.objects.claim(job.id, lease_seconds=60, takeover=False) is None
    Job.objects.filter(pk=job.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert Job.objects.claim(job.id, lease_seconds=60, takeover=False) is not None


def test_the_sweeper_publishes_a_job_committed_but_never_published(world, stub_broker):
    job = make_job(world)
    stub_broker.flush_all()
    Job.objects.filter(pk=job.pk).update(published_at=None, created_at=timezone.now() - timedelta(minutes=5))
    assert jobs_sweep()["queued"] == 1
    assert stub_broker.queues["flickr_rest"].qsize() == 1
    assert jobs_sweep()["queued"] == 0  # published once, not at every sweep


def test_the_sweeper_leaves_published_jobs_in_a_long_queue_alone(world, stub_broker):
    job = make_job(world)
    published_marks.flush()
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert jobs_sweep() == {"queued": 0, "retrying": 0, "running": 0}
    assert stub_broker.queues["flickr_rest"].qsize() == 1


def test_the_sweeper_publishes_due_retries_and_abandoned_running_jobs(world, stub_broker):
    due = make_job(world)
    abandoned = make_job(world)
    stub_broker.flush_all()
    past = timezone.now() - timedelta(seconds=5)
    Job.objects.filter(pk=due.pk).update(state=JobState.RETRYING, next_attempt_at=past, published_at=None)
    Job.objects.filter(pk=abandoned.pk).update(
        state=JobState.RUNNING, published_at=past - timedelta(minutes=6), lease_until=past
    )
    counts = jobs_sweep()
    assert (counts["retrying"], counts["running"]) == (1, 1)
    assert stub_broker.queues["flickr_rest"].qsize() == 2
    assert jobs_sweep() == {"queued": 0, "retrying": 0, "running": 0}


def test_an_embedded_restart_publishes_every_unfinished_job_again(world, stub_broker):
    queued, running, done = make_job(world), make_job(world), make_job(world)
    Job.objects.filter(pk=running.pk).update(state=JobState.RUNNING)
    Job.objects.filter(pk=done.pk).update(state=JobState.COMPLETED)
    stub_broker.flush_all()  # the in-memory queue died with the process
    assert jobs_recover_embedded() == 2
    assert Job.objects.get(pk=queued.pk).state == JobState.QUEUED
    assert Job.objects.get(pk=done.pk).state == JobState.COMPLETED
    assert stub_broker.queues["flickr_rest"].qsize() == 2
    # the job that was running is taken over, knowing its dead run may have called Flickr
    taken = Job.objects.claim(running.id, lease_seconds=60, takeover=False)
    assert taken is not None and taken.taken_over


def test_a_wait_due_before_the_next_sweep_goes_out_delayed_to_its_time(world, stub_broker, settings):
    settings.JOB_SWEEP_INTERVAL_SECONDS = 15
    soon, later = make_job(world), make_job(world)
    stub_broker.flush_all()
    now = timezone.now()
    Job.objects.filter(pk=soon.pk).update(
        state=JobState.RETRYING,
        wait_reason="quota",
        next_attempt_at=now + timedelta(seconds=20),
        published_at=None,
    )
    Job.objects.filter(pk=later.pk).update(
        state=JobState.RETRYING,
        wait_reason="quota",
        next_attempt_at=now + timedelta(minutes=5),
        published_at=None,
    )
    assert jobs_sweep(now=now)["retrying"] == 1
    assert stub_broker.queues["flickr_rest"].qsize() == 0, "not due yet: no message to run now"
    [message] = list(stub_broker.queues["flickr_rest.DQ"].queue)
    decoded = dramatiq.Message.decode(message)
    assert decoded.args == (str(soon.pk),)
    eta_s = decoded.options["eta"] / 1000
    assert abs(eta_s - (now + timedelta(seconds=20)).timestamp()) < 1, "delayed to its slot"
    assert Job.objects.get(pk=later.pk).published_at is None, "five minutes out: left for a later sweep"
