"""A job whose run stopped half-way — its worker killed, its message redelivered, its lease run
out, the database gone mid-job — is taken over by the next run. A read is asked again; a
write that repeating would double, or an upload, is not sent a second time: it ends
`ERR_FLICKR_OUTCOME_UNKNOWN`, as a call cut off mid-way does. Upstream calls are counted by
the sandbox.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from conftest import run_queued_jobs
from flickr.fake.testing import tiny_jpeg
from jobs import runner
from jobs.models import FailedJob, Job, JobState

pytestmark = pytest.mark.usefixtures("transactional_db")


def enqueue(world, method: str, params: dict) -> str:
    response = world.alpha.api().post(
        "/api/v1/flickr/rest",
        data=json.dumps(
            {"method": method, "params": params, "user_id": str(world.alpha.accounts[0].user_id)}
        ),
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    return response.json()["data"]["job_id"]


def a_photo_of(world) -> str:
    library = world.sandbox.app.state.library
    nsid = world.alpha.accounts[0].nsid
    return next(p.id for p in library.photos.values() if p.owner == nsid)


def die_mid_run(job_id: str) -> None:
    """A worker claims the job and dies before recording anything."""
    assert Job.objects.claim(job_id, lease_seconds=300, takeover=False) is not None


def upstream(world, method: str) -> int:
    return world.sandbox.app.counters.snapshot()["by_method"].get(method, 0)


def test_a_write_whose_run_died_is_not_sent_again(world, stub_broker):
    photo_id = a_photo_of(world)
    job_id = enqueue(world, "flickr.photos.addTags", {"photo_id": photo_id, "tags": "taken-over"})
    stub_broker.flush_all()
    die_mid_run(job_id)

    runner.job_run(job_id, takeover=True)  # RabbitMQ redelivered the dead worker's message

    job = Job.objects.get(pk=job_id)
    assert job.state == JobState.FAILED
    assert job.error["code"] == "ERR_FLICKR_OUTCOME_UNKNOWN"
    assert "not sent again" in job.error["message"]
    assert upstream(world, "flickr.photos.addTags") == 0
    assert FailedJob.objects.filter(job_id=job_id, error_class="unknown_outcome").exists()


def test_a_write_whose_lease_ran_out_is_not_sent_again_either(world, stub_broker):
    job_id = enqueue(world, "flickr.photosets.create", {"title": "t", "primary_photo_id": a_photo_of(world)})
    stub_broker.flush_all()
    die_mid_run(job_id)
    Job.objects.filter(pk=job_id).update(lease_until=timezone.now() - timedelta(seconds=1))

    runner.job_run(job_id)  # the sweeper's new message

    assert Job.objects.get(pk=job_id).error["code"] == "ERR_FLICKR_OUTCOME_UNKNOWN"
    assert upstream(world, "flickr.photosets.create") == 0


@pytest.mark.parametrize(
    "method, params",
    [
        ("flickr.test.echo", {"n": "1"}),  # a read: asked again
        ("flickr.photos.setMeta", {"title": "same either way"}),  # sets a value: safe to repeat
    ],
)
def test_a_call_safe_to_repeat_is_made_again_by_the_run_that_takes_over(world, stub_broker, method, params):
    if method == "flickr.photos.setMeta":
        params = {**params, "photo_id": a_photo_of(world)}
    job_id = enqueue(world, method, params)
    stub_broker.flush_all()
    die_mid_run(job_id)

    runner.job_run(job_id, takeover=True)

    job = Job.objects.get(pk=job_id)
    assert job.state == JobState.COMPLETED
    assert job.attempts == 2
    assert upstream(world, method) == 1


def test_an_upload_whose_run_died_is_not_uploaded_again_and_its_file_goes(world, stub_broker, upload_dir):
    photo = io.BytesIO(tiny_jpeg())
    photo.name = "pier.jpg"
    response = world.alpha.api().post(
        "/api/v1/flickr/rest",
        {"user_id": str(world.alpha.accounts[0].user_id), "target": "upload", "photo": photo},
        format="multipart",
    )
    job_id = response.json()["data"]["job_id"]
    stub_broker.flush_all()
    die_mid_run(job_id)

    runner.job_run(job_id, takeover=True)

    assert Job.objects.get(pk=job_id).error["code"] == "ERR_FLICKR_OUTCOME_UNKNOWN"
    assert upstream(world, "upload") == 0
    assert list(upload_dir.iterdir()) == []


def test_a_job_whose_run_lost_the_database_is_retried_and_taken_over(
    world, stub_broker, stub_worker, monkeypatch
):
    """The database drops the connection after the Flickr call: the run raises, Dramatiq
    retries the message, and the retry takes over the job its own earlier run left `running`
    — instead of leaving it to the lease (minutes) and the sweeper."""
    real = Job.objects.complete
    failures = []

    def complete_once_lost(job, **kwargs):
        if not failures:
            failures.append(job.id)
            raise OperationalError("server closed the connection unexpectedly")
        return real(job, **kwargs)

    monkeypatch.setattr(Job.objects, "complete", complete_once_lost)
    job_id = enqueue(world, "flickr.test.echo", {"n": "db"})
    run_queued_jobs(stub_broker, stub_worker)

    job = Job.objects.get(pk=job_id)
    assert failures, "the database did drop once"
    assert job.state == JobState.COMPLETED
    assert job.attempts == 2
    assert upstream(world, "flickr.test.echo") == 2  # a read, asked again
