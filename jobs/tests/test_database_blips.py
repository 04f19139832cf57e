"""The database dropping a connection in the middle of a request: the caller gets a 503 it can
retry, never a 500; and once a job's message is out, a failure to note that is not reported
as a refusal — the job was accepted and runs."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError

from conftest import run_queued_jobs
from jobs.models import Job, JobState

URL = "/api/v1/flickr/rest"


def enqueue(world):
    body = {
        "method": "flickr.test.echo",
        "params": {"n": "1"},
        "user_id": str(world.alpha.accounts[0].user_id),
    }
    return world.alpha.api().post(URL, data=json.dumps(body), content_type="application/json")


def test_a_dropped_database_connection_is_a_503_to_retry(world, monkeypatch):
    def dropped(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr("jobs.services.sqlrows.insert", dropped)  # the job's INSERT
    response = enqueue(world)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    body = response.json()
    assert body["error"]["code"] == "ERR_DATABASE_UNAVAILABLE"
    assert "Idempotency-Key" in body["error"]["message"]
    assert "terminating" not in response.content.decode()  # the database's words stay in the log


@pytest.mark.usefixtures("transactional_db")
def test_a_job_whose_publication_could_not_be_noted_is_still_accepted_and_runs(
    world, stub_broker, stub_worker, monkeypatch
):
    def dropped(job_id):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(Job.objects, "mark_published", dropped)
    response = enqueue(world)
    assert response.status_code == 202, response.content
    monkeypatch.undo()
    run_queued_jobs(stub_broker, stub_worker)
    assert Job.objects.get(pk=response.json()["data"]["job_id"]).state == JobState.COMPLETED
