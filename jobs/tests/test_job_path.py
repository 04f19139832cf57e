"""The job path on the embedded default: enqueue over the API, a worker calls the sandbox,
the status answers with Flickr's result — and each way a call can go wrong ends where the
integrator can act on it."""

from __future__ import annotations

import json

import pytest

from accounts.models import FlickrAccount
from conftest import run_queued_jobs
from jobs.models import Job
from jobs.services import job_publish

pytestmark = pytest.mark.usefixtures("transactional_db")


def enqueue(client, account, method="flickr.test.echo", params=None):
    response = client.api().post(
        "/api/v1/flickr/rest",
        data=json.dumps({"method": method, "params": params or {}, "user_id": str(account.user_id)}),
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    return response.json()["data"]["job_id"]


def job_status(client, job_id):
    return client.api().get(f"/api/v1/flickr/jobs/{job_id}").json()["data"]


def test_a_call_runs_against_flickr_and_its_answer_is_the_result(world, stub_broker, stub_worker):
    job_id = enqueue(world.alpha, world.alpha.accounts[0], params={"greeting": "hello"})
    run_queued_jobs(stub_broker, stub_worker)
    data = job_status(world.alpha, job_id)
    assert data["state"] == "completed"
    assert data["attempts"] == 1
    rv = data["returnvalue"]
    assert rv["from_cache"] is False
    assert rv["flickr"]["stat"] == "ok"
    assert rv["flickr"]["greeting"] == {"_content": "hello"}
    assert set(rv) == {"from_cache", "flickr", "observability"}


def test_the_call_is_signed_with_the_accounts_token(world, stub_broker, stub_worker):
    account = world.alpha.accounts[1]
    job_id = enqueue(world.alpha, account, method="flickr.test.login")
    run_queued_jobs(stub_broker, stub_worker)
    data = job_status(world.alpha, job_id)
    assert data["state"] == "completed"
    assert data["returnvalue"]["flickr"]["user"]["id"] == account.nsid


def test_a_stat_fail_answer_ends_the_job_failed_with_flickrs_code(world, stub_broker, stub_worker):
    job_id = enqueue(
        world.alpha, world.alpha.accounts[0], method="flickr.photos.getInfo", params={"photo_id": "1"}
    )
    run_queued_jobs(stub_broker, stub_worker)
    data = job_status(world.alpha, job_id)
    assert data["state"] == "failed"
    assert data["error"]["flickr_code"] == 1
    assert data["error"]["class"] == "caller"
    assert "not found" in data["failedReason"].lower()
    assert data["attempts"] == 1


def test_an_unknown_method_fails_at_once_with_112(world, stub_broker, stub_worker):
    job_id = enqueue(world.alpha, world.alpha.accounts[0], method="flickr.photos.doesNotExist")
    run_queued_jobs(stub_broker, stub_worker)
    data = job_status(world.alpha, job_id)
    assert (data["state"], data["error"]["flickr_code"], data["attempts"]) == ("failed", 112, 1)


def test_a_token_flickr_rejects_marks_the_account_and_fails_without_retrying(world, stub_broker, stub_worker):
    account = world.alpha.accounts[0]
    token, _ = world.tokens[str(account.user_id)]
    world.sandbox.app.state.revoke_token(token)
    job_id = enqueue(world.alpha, account, method="flickr.test.login")
    run_queued_jobs(stub_broker, stub_worker)
    data = job_status(world.alpha, job_id)
    assert data["state"] == "failed"
    assert data["error"]["flickr_code"] == 98
    assert data["error"]["code"] == "ERR_FLICKR_RELINK_REQUIRED"
    assert "/connect/" in data["failedReason"]
    assert data["attempts"] == 1
    assert FlickrAccount.objects.get(pk=account.pk).status == "needs_relink"
    # and the next job for that account fails without calling Flickr at all
    world.sandbox.app.counters.reset()
    job_id = enqueue(world.alpha, account, method="flickr.test.login")
    run_queued_jobs(stub_broker, stub_worker)
    assert job_status(world.alpha, job_id)["state"] == "failed"
    assert world.sandbox.app.counters.snapshot()["total"] == 0


def test_a_read_token_calling_a_write_method_fails_with_99(world, stub_broker, stub_worker):
    reader = world.alpha.accounts[1]
    job_id = enqueue(
        world.alpha, reader, method="flickr.photos.addTags", params={"photo_id": "1", "tags": "x"}
    )
    run_queued_jobs(stub_broker, stub_worker)
    data = job_status(world.alpha, job_id)
    assert (data["state"], data["error"]["flickr_code"]) == ("failed", 99)


def test_a_server_error_is_retried_and_then_succeeds(world, stub_broker, stub_worker):
    world.sandbox.app.faults.add(kind="http_error", status=503, count=1)
    job_id = enqueue(world.alpha, world.alpha.accounts[0])
    run_queued_jobs(stub_broker, stub_worker)
    data = job_status(world.alpha, job_id)
    assert data["state"] == "completed"
    assert data["attempts"] == 2
    assert world.sandbox.app.counters.snapshot()["total"] == 2


def test_retries_stop_at_the_configured_attempts(world, stub_broker, stub_worker, settings):
    settings.JOB_RETRY_ATTEMPTS = 3
    world.sandbox.app.faults.add(kind="flickr_error", code=105)
    job_id = enqueue(world.alpha, world.alpha.accounts[0])
    run_queued_jobs(stub_broker, stub_worker)
    data = job_status(world.alpha, job_id)
    assert data["state"] == "failed"
    assert data["attempts"] == 3
    assert data["failedReason"].startswith("Gave up after 3 attempts")
    assert world.sandbox.app.counters.snapshot()["total"] == 3


def test_a_message_delivered_twice_runs_the_call_once(world, stub_broker, stub_worker):
    job_id = enqueue(world.alpha, world.alpha.accounts[0])
    job_publish(Job.objects.get(pk=job_id))  # a duplicate, as a sweeper re-publish would make
    run_queued_jobs(stub_broker, stub_worker)
    assert job_status(world.alpha, job_id)["state"] == "completed"
    assert world.sandbox.app.counters.snapshot()["total"] == 1


def test_a_write_whose_answer_never_came_is_not_repeated(world, stub_broker, stub_worker):
    world.sandbox.app.faults.add(kind="drop_connection", method="flickr.photos.addTags")
    job_id = enqueue(
        world.alpha,
        world.alpha.accounts[0],
        method="flickr.photos.addTags",
        params={"photo_id": "1", "tags": "x"},
    )
    run_queued_jobs(stub_broker, stub_worker)
    data = job_status(world.alpha, job_id)
    assert data["state"] == "failed"
    assert data["error"]["code"] == "ERR_FLICKR_OUTCOME_UNKNOWN"
    assert data["attempts"] == 1
