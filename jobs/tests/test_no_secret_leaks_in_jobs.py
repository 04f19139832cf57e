"""A representative run of the whole hub — an account linked through the auth endpoints, REST,
upload and replace jobs run against the sandbox, one retried, one failed for good, signed
callbacks, the status answers, and every admin page an operator would open — with every log
line captured at DEBUG. None of the secrets it handled may appear in any of it.

accounts/tests/test_no_secret_leaks.py covers the linking pages and commands in depth; this one
follows the secrets onward, into jobs, callbacks and the admin.
"""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import NoReverseMatch, reverse

from accounts.models import FlickrAccount
from accounts.tests.conftest import approve
from accounts.tests.test_no_secret_leaks import log_lines  # noqa: F401 (the fixture)
from conftest import run_queued_jobs
from flickr.fake import SANDBOX_CONSUMER_SECRET
from flickr.fake.testing import tiny_jpeg, tiny_png
from jobs.models import CallbackDelivery, FailedJob, Job

pytestmark = pytest.mark.usefixtures("transactional_db")

CALLBACK_SECRET = "receivers-own-shared-secret-4f1c9a"


def photo(data: bytes, name: str) -> io.BytesIO:
    file = io.BytesIO(data)
    file.name = name
    return file


def every_admin_page(operator: Client) -> list[str]:
    """Each registered model's list and the change page of each of its rows."""
    pages = [operator.get(reverse("admin:index"))]
    for model in admin.site._registry:
        opts = model._meta
        pages.append(operator.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")))
        for pk in model._default_manager.values_list("pk", flat=True)[:50]:
            try:
                url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])
            except NoReverseMatch:
                continue
            pages.append(operator.get(url))
    for page in pages:
        assert page.status_code == 200, page
    return [page.content.decode() for page in pages]


def test_no_token_secret_or_key_reaches_a_log_line_an_answer_a_callback_or_an_admin_page(
    world,
    stub_broker,
    stub_worker,
    receiver,
    log_lines,  # noqa: F811 (the fixture imported above)
    settings,
):
    settings.JOB_RETRY_ATTEMPTS = 2
    seen: list[str] = []
    api = world.alpha.api()

    def keep(response) -> dict:
        seen.append(response.content.decode() + json.dumps(dict(response.headers)))
        return response.json()

    # 1. Link one more account through the original's JSON endpoints.
    started = keep(api.post("/api/v1/auth/start", {}, format="json"))["data"]
    request_secret = world.sandbox.app.state.request_tokens[started["oauth_token"]].secret
    verifier = approve(world.sandbox, started["oauth_token"])
    linked = keep(
        api.post(
            "/api/v1/auth/complete",
            {"oauth_token": started["oauth_token"], "oauth_verifier": verifier},
            format="json",
        )
    )["data"]
    account = FlickrAccount.objects.get(user_id=linked["user_id"])

    # 2. Jobs: reads, a write, an upload and a replace, one retried after a 503, one failed
    #    for good, each calling back, signed with a callback secret of the caller's own.
    world.sandbox.app.faults.add("http_error", method="flickr.test.login", count=1, status=503)
    calls = [
        {"method": "flickr.test.login", "user_id": linked["user_id"]},
        {
            "method": "flickr.people.getInfo",
            "user_id": linked["user_id"],
            "params": {"user_id": account.nsid},
        },
        # a parameterless search: Flickr refuses it (code 3), the job fails for good
        {"method": "flickr.photos.search", "user_id": str(world.alpha.accounts[0].user_id), "params": {}},
    ]
    job_ids = []
    for call in calls:
        body = {**call, "callback_url": receiver.url, "callback_secret": CALLBACK_SECRET}
        job_ids.append(
            keep(api.post("/api/v1/flickr/rest", body, format="json", HTTP_IDEMPOTENCY_KEY=call["method"]))[
                "data"
            ]["job_id"]
        )
    uploaded = keep(
        api.post(
            "/api/v1/flickr/rest",
            {
                "user_id": str(world.alpha.accounts[0].user_id),  # a Pro account: it may replace
                "target": "upload",
                "params": json.dumps({"title": "harbour"}),
                "callback_url": receiver.url,
                "photo": photo(tiny_jpeg(), "harbour.jpg"),
            },
            format="multipart",
        )
    )["data"]["job_id"]
    run_queued_jobs(stub_broker, stub_worker)
    photo_id = Job.objects.get(pk=uploaded).result["flickr"]["photoid"]["_content"]
    replaced = keep(
        api.post(
            "/api/v1/flickr/rest",
            {
                "user_id": str(world.alpha.accounts[0].user_id),
                "target": "replace",
                "params": json.dumps({"photo_id": photo_id}),
                "photo": photo(tiny_png(), "harbour-2.png"),
            },
            format="multipart",
        )
    )["data"]["job_id"]
    run_queued_jobs(stub_broker, stub_worker)
    job_ids += [uploaded, replaced]

    # every job ended, the way the run meant it to
    states = {job.method: (job.state, job.attempts) for job in Job.objects.filter(pk__in=job_ids)}
    assert states["flickr.test.login"] == ("completed", 2)  # retried once
    assert states["flickr.people.getInfo"] == ("completed", 1)
    assert states["flickr.photos.search"][0] == "failed"
    assert states["upload"][0] == states["replace"][0] == "completed"
    assert FailedJob.objects.count() == 1
    assert len(receiver.wait_for(4)) == 4  # each job with a callback URL called back once

    # 3. The answers a client reads.
    for job_id in job_ids:
        keep(api.get(f"/api/v1/flickr/jobs/{job_id}"))
    keep(
        api.post(
            "/api/v1/flickr/jobs/status", {"job_id": job_ids[0], "user_id": linked["user_id"]}, format="json"
        )
    )
    callback_signing_secret = api.get("/api/v1/flickr/callbacks/secret").json()["data"]["secret"]

    # 4. Every admin page about them.
    operator = Client()
    operator.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "x" * 24))
    seen += every_admin_page(operator)
    assert CallbackDelivery.objects.count() == 4

    callbacks = [r.body.decode() + json.dumps(r.headers) for r in receiver.requests]
    logs = log_lines.getvalue()
    assert '"event": "flickr_api_call"' in logs and '"level": "debug"' in logs  # captured, at DEBUG
    assert "callback_sent" in logs and "job_failed" in logs

    secrets = {
        "consumer secret": SANDBOX_CONSUMER_SECRET,
        "request token secret": request_secret,
        "alpha's API key": world.alpha.key,
        "beta's API key": world.beta.key,
        "a job's callback secret": CALLBACK_SECRET,
        "the client's callback signing secret": callback_signing_secret,
        "the Django secret key": django_settings.SECRET_KEY,
        **{f"encryption key {i}": key for i, key in enumerate(django_settings.ENCRYPTION_KEYS)},
    }
    for linked_account in FlickrAccount.objects.all():
        creds = linked_account.credentials()
        secrets[f"token of {linked_account.nsid}"] = creds.token
        secrets[f"token secret of {linked_account.nsid}"] = creds.token_secret
    assert len(secrets) >= 13
    everything = {
        "a log line": logs,
        "an answer or admin page": "\n".join(seen),
        "a callback": "\n".join(callbacks),
    }
    for name, value in secrets.items():
        for where, text in everything.items():
            assert value not in text, f"the {name} leaked into {where}"
