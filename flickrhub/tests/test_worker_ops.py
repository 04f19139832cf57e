"""Worker processes report a heartbeat, record each attempt of a job, and stop cleanly."""

from __future__ import annotations

import json

import dramatiq
import pytest

from conftest import run_queued_jobs
from flickrhub.models import JobAttempt, WorkerHeartbeat
from flickrhub.workers import WorkerOpsMiddleware, flush_attempts, worker_id
from jobs.models import Job

pytestmark = pytest.mark.usefixtures("transactional_db")


def enqueue(world, method="flickr.test.echo"):
    response = world.alpha.api().post(
        "/api/v1/flickr/rest",
        data=json.dumps({"method": method, "params": {}, "user_id": str(world.alpha.accounts[0].user_id)}),
        content_type="application/json",
    )
    assert response.status_code == 202
    return response.json()["data"]["job_id"]


def ops_middleware(broker) -> WorkerOpsMiddleware:
    return next(m for m in broker.middleware if isinstance(m, WorkerOpsMiddleware))


def test_a_worker_writes_its_heartbeat_with_its_queues_and_removes_it_when_it_stops(
    stub_broker, settings, tmp_path
):
    import jobs.tasks  # noqa: F401 (declares the queues the worker consumes)

    settings.WORKER_HEARTBEAT_SECONDS = 30
    settings.WORKER_HEARTBEAT_FILE = str(tmp_path / "alive")
    worker = dramatiq.Worker(stub_broker, worker_threads=3, worker_timeout=50)
    worker.start()
    try:
        beat = WorkerHeartbeat.objects.get(worker_id=worker_id())
        assert {"flickr_rest", "flickr_upload", "flickr_replace"} <= set(beat.queues)
        assert beat.threads == 3 and beat.stopping is False
        assert (tmp_path / "alive").exists()
    finally:
        worker.stop()
    assert not WorkerHeartbeat.objects.filter(worker_id=worker_id()).exists()


def test_each_attempt_of_a_job_is_recorded_with_its_outcome(world, stub_broker, stub_worker):
    world.sandbox.app.faults.add(kind="http_error", status=503, count=1)
    job_id = enqueue(world)
    run_queued_jobs(stub_broker, stub_worker)
    assert not JobAttempt.objects.exists(), "written in a batch, not a statement per job"
    assert flush_attempts() == 2
    attempts = list(JobAttempt.objects.filter(job_id=job_id).order_by("number"))
    assert [(a.number, a.outcome) for a in attempts] == [(1, "retrying"), (2, "completed")]
    assert attempts[0].error["code"] == "ERR_FLICKR_UNAVAILABLE"
    assert attempts[1].error is None
    assert all(a.duration_ms is not None and a.duration_ms >= 0 for a in attempts)
    assert all(a.worker == worker_id() for a in attempts)


def test_a_duplicate_message_records_no_attempt(world, stub_broker, stub_worker):
    from jobs.services import job_publish

    job_id = enqueue(world)
    run_queued_jobs(stub_broker, stub_worker)
    job_publish(Job.objects.get(pk=job_id))  # the job is completed: this message finds nothing to run
    run_queued_jobs(stub_broker, stub_worker)
    flush_attempts()
    assert JobAttempt.objects.filter(job_id=job_id).count() == 1


def test_the_attempt_log_survives_a_database_blip_and_skips_a_deleted_job(world, stub_broker, stub_worker):
    from unittest import mock

    from django.db import OperationalError

    kept, deleted = enqueue(world), enqueue(world)
    run_queued_jobs(stub_broker, stub_worker)
    with mock.patch.object(JobAttempt.objects, "bulk_create", side_effect=OperationalError("gone")):
        assert flush_attempts() == 0  # kept for the next flush
    Job.objects.filter(pk=deleted).delete()
    assert flush_attempts() == 1
    assert list(JobAttempt.objects.values_list("job_id", flat=True)) == [Job.objects.get(pk=kept).pk]


def test_a_stopping_worker_writes_the_attempts_it_recorded(world, stub_broker, stub_worker):
    job_id = enqueue(world)
    run_queued_jobs(stub_broker, stub_worker)
    ops_middleware(stub_broker).after_worker_shutdown(stub_broker, stub_worker)
    assert JobAttempt.objects.filter(job_id=job_id).count() == 1


def test_jobs_in_hand_are_counted_while_they_run(stub_broker):
    middleware = ops_middleware(stub_broker)

    class Message:
        message_id = "m-1"
        queue_name = "flickr_rest"

    middleware.before_process_message(stub_broker, Message())
    assert middleware.in_progress() == 1
    middleware.after_process_message(stub_broker, Message())
    assert middleware.in_progress() == 0
