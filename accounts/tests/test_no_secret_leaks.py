"""A full linking run — pages, JSON answers, command output and every log line, at DEBUG —
searched for the tokens and secrets it handled. None may appear; the stored bytes are not them."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client

from accounts.models import FlickrAccount
from accounts.tests.conftest import approve
from flickr.fake import SANDBOX_CONSUMER_SECRET


@pytest.fixture
def log_lines():
    """Every log line the hub writes, rendered by its own formatter (redaction included), at DEBUG."""
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(root.handlers[0].formatter)
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_nothing_secret_reaches_a_page_an_answer_or_a_log_line(world, log_lines, monkeypatch):
    sandbox = world.sandbox
    seen: list[str] = []

    # 1. The JSON endpoints.
    api = world.alpha.api()
    started = api.post("/api/v1/auth/start", {}, format="json")
    seen.append(started.content.decode())
    oauth_token = started.json()["data"]["oauth_token"]
    request_secret = sandbox.app.state.request_tokens[oauth_token].secret
    code = approve(sandbox, oauth_token, index=3)
    done = api.post(
        "/api/v1/auth/complete", {"oauth_token": oauth_token, "oauth_verifier": code}, format="json"
    )
    seen.append(done.content.decode())
    api_user_id = done.json()["data"]["user_id"]

    # 2. The pages, through an invitation, out-of-band.
    user = get_user_model().objects.create_user("maria", password="a long enough password 1")
    world.beta.model.managers.add(user)
    browser = Client()
    browser.force_login(user)
    for response in (
        browser.get("/connect/"),
        browser.post("/connect/", {"client": str(world.beta.model.pk), "perms": "read"}),
    ):
        seen.append(response.content.decode() + str(response.headers))
    code_page = browser.post("/connect/", {"client": str(world.beta.model.pk), "perms": "read"})["Location"]
    page_token = code_page.rstrip("/").rsplit("/", 1)[1]
    page_request_secret = sandbox.app.state.request_tokens[page_token].secret
    seen.append(browser.get(code_page).content.decode())
    wrong = browser.post(code_page, {"code": "000-000-001"})
    seen.append(wrong.content.decode())
    finished = browser.post(
        code_page, {"code": approve(sandbox, page_token, perms="read", index=0)}, follow=True
    )
    seen.append(finished.content.decode())

    # 3. The shell command.
    out = io.StringIO()

    def person(prompt: str = "") -> str:
        token = re.search(r"oauth_token=([^&\s]+)", out.getvalue()).group(1)
        return approve(sandbox, token, index=1)

    monkeypatch.setattr("builtins.input", person)
    call_command("flickr_auth", "--client", "beta", stdout=out, stderr=out)
    call_command("flickr_tokens", "--json", stdout=out)
    seen.append(out.getvalue())

    logs = log_lines.getvalue()
    assert "flickr_account_linked" in logs and '"level": "debug"' in logs  # captured, at DEBUG
    everything = "\n".join(seen) + logs

    secrets = {
        "consumer secret": SANDBOX_CONSUMER_SECRET,
        "request secret": request_secret,
        "page request secret": page_request_secret,
    }
    linked = FlickrAccount.objects.filter(client__in=[world.alpha.model, world.beta.model]).exclude(
        user_id__in=[a.user_id for a in world.alpha.accounts + world.beta.accounts]
    )
    assert api_user_id in {str(a.user_id) for a in linked}
    assert linked.count() == 3
    for account in linked:
        creds = account.credentials()
        secrets[f"token of {account.nsid}"] = creds.token
        secrets[f"secret of {account.nsid}"] = creds.token_secret
    for name, value in secrets.items():
        assert value not in everything, f"the {name} leaked"

    # and what the database holds is ciphertext, not the token
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT oauth_token_encrypted || ' ' || oauth_token_secret_encrypted FROM accounts_flickraccount"
        )
        stored = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT api_secret_encrypted FROM accounts_flickrapp")
        stored += " ".join(row[0] for row in cursor.fetchall())
    for name, value in secrets.items():
        assert value not in stored, f"the {name} is stored in the clear"
    assert json.loads(json.dumps(stored))  # plain text, nothing binary hiding it
