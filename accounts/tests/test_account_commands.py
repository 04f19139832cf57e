"""flickr_auth, flickr_tokens and flickr_invite, against the sandbox."""

from __future__ import annotations

import io
import json
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import FlickrAccount, Invitation
from accounts.tests.conftest import approve, sandbox_nsid


class Person:
    """Answers flickr_auth's prompt the way a person would: reads the printed URL, approves on
    the sandbox, types what Flickr showed."""

    def __init__(self, sandbox, out: io.StringIO, *, typed: str = "{code}", perms: str = "write") -> None:
        self.sandbox, self.out, self.typed, self.perms = sandbox, out, typed, perms
        self.prompts: list[str] = []

    def __call__(self, prompt: str = "") -> str:
        self.prompts.append(prompt)
        url = re.search(r"^(http\S+/services/oauth/authorize\S+)$", self.out.getvalue(), re.MULTILINE).group(
            1
        )
        oauth_token = parse_qs(urlsplit(url).query)["oauth_token"][0]
        code = approve(self.sandbox, oauth_token, perms=self.perms)
        return self.typed.format(code=code, digits=code.replace("-", ""))


def auth(monkeypatch, sandbox, *args: str, typed: str = "{code}", perms: str = "write"):
    out, err = io.StringIO(), io.StringIO()
    person = Person(sandbox, out, typed=typed, perms=perms)
    monkeypatch.setattr("builtins.input", person)
    call_command("flickr_auth", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue(), person


def test_flickr_auth_links_prints_the_user_id_and_checks_it(world, monkeypatch):
    out, _, person = auth(monkeypatch, world.sandbox, "--client", "alpha", "--perms", "read", perms="read")
    account = FlickrAccount.objects.get(nsid=sandbox_nsid(world.sandbox, 3))
    assert person.prompts == ["Enter the verifier code: "]
    assert "1) Open this URL in your browser and authorize the app:" in out
    assert f'Saved under user_id="{account.user_id}"' in out
    assert "flickr.test.login: ok" in out
    assert (account.client.name, account.perms) == ("alpha", "read")
    token, secret = account.credentials().token, account.credentials().token_secret
    assert token not in out and secret not in out


def test_flickr_auth_gives_a_new_account_the_user_id_asked_for(world, monkeypatch):
    wanted = str(uuid.uuid4())
    out, _, _ = auth(monkeypatch, world.sandbox, "--client", "beta", "--user-id", wanted, typed="{digits}")
    assert FlickrAccount.objects.get(user_id=wanted).client.name == "beta"
    assert f'user_id="{wanted}"' in out


def test_flickr_auth_keeps_going_after_a_mistyped_code(world, monkeypatch):
    answers = iter(["12", "999-999-998"])
    out = io.StringIO()
    person = Person(world.sandbox, out)

    def typing(prompt: str = "") -> str:
        code = person(prompt)
        return next(answers, code)

    monkeypatch.setattr("builtins.input", typing)
    err = io.StringIO()
    call_command("flickr_auth", "--client", "alpha", stdout=out, stderr=err)
    assert "That is not a Flickr code" in err.getvalue()
    assert "Flickr refused the verification code" in err.getvalue()
    assert "Saved under user_id=" in out.getvalue()


def test_flickr_auth_refuses_a_user_id_in_use_and_an_unknown_client(world):
    with pytest.raises(CommandError, match="belongs to an account already"):
        call_command("flickr_auth", "--client", "alpha", "--user-id", str(world.alpha.accounts[0].user_id))
    with pytest.raises(CommandError, match="No active API client named 'nope'"):
        call_command("flickr_auth", "--client", "nope")
    with pytest.raises(CommandError, match="Say which client"):
        call_command("flickr_auth")


def test_flickr_auth_in_two_steps_for_scripts(world):
    out = io.StringIO()
    call_command("flickr_auth", "--client", "alpha", "--no-input", stdout=out)
    oauth_token = re.search(r"--oauth-token (\S+)", out.getvalue()).group(1)
    code = approve(world.sandbox, oauth_token)
    second = io.StringIO()
    call_command(
        "flickr_auth", "--client", "alpha", "--oauth-token", oauth_token, "--verifier", code, stdout=second
    )
    assert "Saved under user_id=" in second.getvalue()


def test_flickr_auth_explains_an_unreachable_flickr(world, settings, closed_port_url):
    settings.FLICKR_OAUTH_REQUEST_TOKEN_URL = f"{closed_port_url}/x"
    with pytest.raises(CommandError, match="Flickr could not be reached"):
        call_command("flickr_auth", "--client", "alpha", stdout=io.StringIO())


def test_flickr_tokens_lists_accounts_without_secrets(world):
    out = io.StringIO()
    call_command("flickr_tokens", stdout=out)
    text = out.getvalue()
    assert text.splitlines()[0].split() == [
        "user_id",
        "nsid",
        "username",
        "perms",
        "status",
        "client",
        "created",
        "last_used",
    ]
    assert "3 account(s)." in text
    for user_id, (token, secret) in world.tokens.items():
        assert user_id in text
        assert token not in text and secret not in text


def test_flickr_tokens_json_is_for_scripts(world):
    out = io.StringIO()
    call_command("flickr_tokens", "--json", "--client", "beta", stdout=out)
    rows = json.loads(out.getvalue())
    assert [r["user_id"] for r in rows] == [str(world.beta.accounts[0].user_id)]
    assert set(rows[0]) == {
        "user_id",
        "nsid",
        "username",
        "perms",
        "status",
        "client",
        "created",
        "last_used",
        "duplicate_of",
    }
    assert rows[0]["perms"] == "write" and rows[0]["status"] == "active" and rows[0]["last_used"] is None


def test_flickr_tokens_shows_when_an_account_was_last_used(world):
    world.alpha.accounts[0].credentials()  # what the worker does before each call
    out = io.StringIO()
    call_command("flickr_tokens", "--json", stdout=out)
    used = {r["user_id"]: r["last_used"] for r in json.loads(out.getvalue())}
    assert used[str(world.alpha.accounts[0].user_id)] is not None


def test_flickr_invite_prints_a_link_that_works_once(world, settings):
    settings.PUBLIC_BASE_URL = "https://hub.example"
    out = io.StringIO()
    call_command("flickr_invite", "--client", "beta", "--expires-hours", "2", "--note", "for Ann", stdout=out)
    url = re.search(r"^(https://hub\.example/connect/invite/\S+/)$", out.getvalue(), re.MULTILINE).group(1)
    invitation = Invitation.objects.get()
    assert (invitation.client.name, invitation.note) == ("beta", "for Ann")
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert token not in invitation.token_hash
    assert Client().get(urlsplit(url).path)["Location"] == "/connect/"


def test_flickr_invite_refuses_nonsense_expiry(world):
    with pytest.raises(CommandError, match="--expires-hours"):
        call_command("flickr_invite", "--client", "beta", "--expires-hours", "0")
