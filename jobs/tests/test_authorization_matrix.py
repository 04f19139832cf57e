"""Who may touch what: two API clients with two linked accounts each, every endpoint that takes
an id, every id of the other client swapped in. Nothing crosses between clients, and "not
yours" is answered exactly like "does not exist" — an answer never tells that an id is real.
Then the admin: every page needs a staff sign-in.
"""

from __future__ import annotations

import io
import json
import uuid
from itertools import product

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.services import account_link, flickr_app_get_or_create, invitation_create
from accounts.tests.conftest import approve
from conftest import sandbox_nsids
from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET
from flickr.fake.testing import tiny_jpeg
from jobs.models import CallbackDelivery, FailedJob, Job
from jobs.services import job_enqueue

ENQUEUE = "/api/v1/flickr/rest"
STATUS = "/api/v1/flickr/jobs/status"


@pytest.fixture
def matrix(world, stub_broker):
    """alpha and beta with two accounts each, and one queued job per account."""
    nsid = sandbox_nsids(world.sandbox)[3]
    token, secret = world.sandbox.app.state.issue_access_token(
        consumer_key=SANDBOX_CONSUMER_KEY, nsid=nsid, perms="write"
    )
    app = flickr_app_get_or_create(
        api_key=SANDBOX_CONSUMER_KEY, api_secret=SANDBOX_CONSUMER_SECRET, server_app=True
    )
    account, _ = account_link(
        client=world.beta.model,
        app=app,
        nsid=nsid,
        username="user-4",
        fullname="",
        perms="write",
        token=token,
        token_secret=secret,
    )
    world.beta.accounts.append(account)
    jobs = {
        account.user_id: job_enqueue(
            client=client.model, account=account, method="flickr.test.echo", params={"of": str(account.nsid)}
        )
        for client in (world.alpha, world.beta)
        for account in client.accounts
    }
    return world, jobs


def others(world):
    """(caller, the other client) both ways round."""
    return [(world.alpha, world.beta), (world.beta, world.alpha)]


def answer(response, *, normalise: str = "") -> tuple[int, dict]:
    """Status and body without the request id (it differs on every request) and with the id
    the caller sent replaced, so answers about different ids can be compared whole."""
    body = response.json()
    body.pop("request_id")
    text = json.dumps(body)
    if normalise:
        text = text.replace(normalise, "<id>")
    return response.status_code, json.loads(text)


def post_json(client, path, body):
    return client.api().post(path, data=json.dumps(body), content_type="application/json")


def test_no_client_can_queue_a_call_for_another_clients_account(matrix):
    world, _jobs = matrix
    before = Job.objects.count()
    for caller, owner in others(world):
        unknown_id = str(uuid.uuid4())
        unknown = answer(
            post_json(caller, ENQUEUE, {"method": "flickr.test.echo", "user_id": unknown_id}),
            normalise=unknown_id,
        )
        assert unknown[0] == 404 and unknown[1]["error"]["code"] == "ERR_TOKEN_NOT_FOUND"
        for account in owner.accounts:
            user_id = str(account.user_id)
            rest = post_json(caller, ENQUEUE, {"method": "flickr.test.echo", "user_id": user_id})
            assert answer(rest, normalise=user_id) == unknown
            photo = io.BytesIO(tiny_jpeg())
            photo.name = "p.jpg"
            upload = caller.api().post(
                ENQUEUE, {"user_id": user_id, "target": "upload", "photo": photo}, format="multipart"
            )
            assert answer(upload, normalise=user_id) == unknown
    assert Job.objects.count() == before


def test_no_client_can_read_another_clients_job_and_the_answer_is_that_of_a_missing_one(matrix):
    world, jobs = matrix
    for caller, owner in others(world):
        for account in owner.accounts:
            job_id = str(jobs[account.user_id].id)
            missing_id = str(uuid.uuid4())
            for suffix in ("", "?wait=0.05"):
                theirs = caller.api().get(f"/api/v1/flickr/jobs/{job_id}{suffix}")
                missing = caller.api().get(f"/api/v1/flickr/jobs/{missing_id}{suffix}")
                assert theirs.status_code == 404
                assert answer(theirs) == answer(missing)
        # and their own jobs they do read
        for account in caller.accounts:
            mine = caller.api().get(f"/api/v1/flickr/jobs/{jobs[account.user_id].id}")
            assert mine.status_code == 200 and mine.json()["data"]["user_id"] == str(account.user_id)


def test_the_status_call_answers_only_the_owner_with_the_jobs_own_user_id(matrix):
    world, jobs = matrix
    every_account = world.alpha.accounts + world.beta.accounts
    missing = {}
    for caller in (world.alpha, world.beta):
        missing_job = str(uuid.uuid4())
        missing[caller.model.pk] = answer(
            post_json(caller, STATUS, {"job_id": missing_job, "user_id": str(caller.accounts[0].user_id)})
        )
        assert missing[caller.model.pk][0] == 404
    checked = 0
    for caller, job_account, user_account in product((world.alpha, world.beta), every_account, every_account):
        job = jobs[job_account.user_id]
        response = post_json(caller, STATUS, {"job_id": str(job.id), "user_id": str(user_account.user_id)})
        rightful = job.client_id == caller.model.pk and job_account == user_account
        if rightful:
            assert response.status_code == 200
            assert response.json()["data"]["id"] == str(job.id)
        else:
            assert answer(response) == missing[caller.model.pk], (
                caller.model.name,
                job_account,
                user_account,
            )
        checked += 1
    assert checked == 2 * 4 * 4


def test_a_linking_attempt_of_one_client_cannot_be_finished_by_the_other(world):
    started = world.alpha.api().post("/api/v1/auth/start", {}, format="json").json()["data"]
    verifier = approve(world.sandbox, started["oauth_token"])
    for path, send in (
        ("/api/v1/auth/complete", lambda api, body: api.post("/api/v1/auth/complete", body, format="json")),
        ("/api/v1/auth/callback", lambda api, body: api.get("/api/v1/auth/callback", body)),
    ):
        theirs = send(world.beta.api(), {"oauth_token": started["oauth_token"], "oauth_verifier": verifier})
        unknown = send(
            world.beta.api(), {"oauth_token": "72157000000000000-0000", "oauth_verifier": verifier}
        )
        assert theirs.status_code == 400, path
        assert answer(theirs) == answer(unknown), path
    linked = world.alpha.api().post(
        "/api/v1/auth/complete",
        {"oauth_token": started["oauth_token"], "oauth_verifier": verifier},
        format="json",
    )
    assert linked.status_code == 200


def test_each_client_reads_and_rotates_only_its_own_callback_secret(world):
    alpha = world.alpha.api().get("/api/v1/flickr/callbacks/secret").json()["data"]["secret"]
    beta = world.beta.api().get("/api/v1/flickr/callbacks/secret").json()["data"]["secret"]
    assert alpha != beta
    rotated = world.alpha.api().post("/api/v1/flickr/callbacks/secret").json()["data"]["secret"]
    assert rotated != alpha
    assert world.beta.api().get("/api/v1/flickr/callbacks/secret").json()["data"]["secret"] == beta


# ------------------------------------------------------------------ the admin


def admin_urls() -> list[str]:
    """Every page of every registered model: list, add, and an object's change, delete and
    history pages; the admin's index and each app's index."""
    urls = [reverse("admin:index")]
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        urls.append(reverse("admin:app_list", args=[opts.app_label]))
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        try:
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
        except NoReverseMatch:
            pass
        obj = model._default_manager.first()
        if obj is not None:
            for page in ("change", "delete", "history"):
                try:
                    urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_{page}", args=[obj.pk]))
                except NoReverseMatch:
                    pass
        for pattern in model_admin.get_urls():
            # the admin's own extra pages (none take arguments beyond an object id)
            name = getattr(pattern, "name", None)
            if name and not name.endswith(("_changelist", "_add", "_change", "_delete", "_history")):
                try:
                    urls.append(reverse(f"admin:{name}"))
                except NoReverseMatch:
                    pass
    return sorted(set(urls))


def test_every_admin_page_needs_a_staff_sign_in(matrix):
    world, jobs = matrix
    staff = get_user_model().objects.create_superuser("root", "root@example.com", "a long enough password 1")
    someone = get_user_model().objects.create_user("maria", password="a long enough password 1")
    world.alpha.model.managers.add(someone)  # manages a client, still not staff
    # one row of every kind, so each model's object pages are in the list
    job = next(iter(jobs.values()))
    invitation_create(client=world.alpha.model)
    Group.objects.create(name="operators")
    FailedJob.objects.create(
        job_id=job.pk,
        client=job.client,
        account=job.account,
        target=job.target,
        method=job.method,
        error={"code": "ERR_FLICKR_API"},
        error_class="caller",
        error_code="ERR_FLICKR_API",
        attempts=1,
        max_attempts=3,
        job_created_at=job.created_at,
    )
    CallbackDelivery.objects.create(
        job=job, job_finished_at=timezone.now(), url="https://example.com/hook", body="{}", max_attempts=3
    )
    urls = admin_urls()
    assert len(urls) >= 45, urls
    anonymous, not_staff, operator = Client(), Client(), Client()
    not_staff.force_login(someone)
    operator.force_login(staff)
    for url in urls:
        for browser in (anonymous, not_staff):
            for method in ("get", "post"):
                response = getattr(browser, method)(url)
                assert response.status_code == 302, (url, method, response.status_code)
                assert response["Location"].startswith("/admin/login/"), (url, response["Location"])
        # staff see every page, except adding or deleting what the admin keeps read-only
        seen = operator.get(url).status_code
        assert seen == 200 or (seen == 403 and url.endswith(("/add/", "/delete/"))), (url, seen)
    # a refused POST changed nothing (a delete page would have deleted the job)
    assert Job.objects.filter(pk__in=[j.pk for j in jobs.values()]).count() == len(jobs)
