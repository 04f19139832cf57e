"""Reading a job: GET /api/v1/flickr/jobs/<id> and the original's POST /jobs/status."""

from __future__ import annotations

import json
import uuid

from jobs.models import Job, JobState
from jobs.services import job_enqueue


def enqueue_for(client, account, **fields) -> Job:
    return job_enqueue(
        client=client.model,
        account=account,
        method=fields.pop("method", "flickr.test.echo"),
        params=fields.pop("params", {}),
        **fields,
    )


def status(api, job_id, user_id):
    return api.post(
        "/api/v1/flickr/jobs/status",
        data=json.dumps({"job_id": str(job_id), "user_id": str(user_id)}),
        content_type="application/json",
    )


def test_a_queued_job_reads_back_with_its_queue(world, stub_broker):
    account = world.alpha.accounts[0]
    job = enqueue_for(world.alpha, account, meta={"k": 1})
    data = world.alpha.api().get(f"/api/v1/flickr/jobs/{job.id}").json()["data"]
    assert data["id"] == str(job.id)
    assert data["state"] == "queued"
    assert data["queue"] == "flickr_rest"
    assert data["user_id"] == str(account.user_id)
    assert data["meta"] == {"k": 1}
    assert "returnvalue" not in data and "failedReason" not in data


def test_the_original_status_call_answers_for_the_right_user_id(world, stub_broker):
    account = world.alpha.accounts[0]
    job = enqueue_for(world.alpha, account)
    response = status(world.alpha.api(), job.id, account.user_id)
    assert response.status_code == 200
    assert response.json()["data"]["state"] == "queued"


def test_a_user_id_that_does_not_match_the_job_is_not_found(world, stub_broker):
    job = enqueue_for(world.alpha, world.alpha.accounts[0])
    other = world.alpha.accounts[1].user_id
    body = status(world.alpha.api(), job.id, other).json()
    assert body["error"] == {"code": "ERR_JOB_NOT_FOUND", "message": "job_not_found"}


def test_another_clients_job_is_not_found_exactly_like_a_missing_one(world, stub_broker):
    job = enqueue_for(world.alpha, world.alpha.accounts[0])
    beta = world.beta.api()
    theirs = beta.get(f"/api/v1/flickr/jobs/{job.id}")
    missing = beta.get(f"/api/v1/flickr/jobs/{uuid.uuid4()}")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"] == missing.json()["error"]
    via_status = status(beta, job.id, world.alpha.accounts[0].user_id)
    assert via_status.status_code == 404
    assert via_status.json()["error"] == missing.json()["error"]


def test_a_malformed_job_id_is_not_found(world):
    assert world.alpha.api().get("/api/v1/flickr/jobs/not-a-uuid").status_code == 404


def test_the_status_call_needs_both_ids(world):
    response = world.alpha.api().post(
        "/api/v1/flickr/jobs/status", data=json.dumps({"job_id": "x"}), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "ERR_INVALID_REQUEST",
        "message": "job_id and user_id are required",
    }


def test_a_failed_job_shows_its_reason_and_error_code(world, stub_broker):
    job = enqueue_for(world.alpha, world.alpha.accounts[0])
    Job.objects.filter(pk=job.pk).update(
        state=JobState.FAILED,
        error={"code": "ERR_FLICKR_API", "message": "Flickr error 1: Photo not found", "flickr_code": 1},
    )
    data = world.alpha.api().get(f"/api/v1/flickr/jobs/{job.id}").json()["data"]
    assert data["state"] == "failed"
    assert data["failedReason"] == "Flickr error 1: Photo not found"
    assert data["error"]["flickr_code"] == 1
    assert "returnvalue" not in data
