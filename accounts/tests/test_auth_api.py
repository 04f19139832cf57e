"""POST /api/v1/auth/start, /complete and GET /callback — the original's calls, against the sandbox."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache

from accounts.models import FlickrAccount, FlickrApp
from accounts.tests.conftest import approve, sandbox_nsid
from flickr import client as flickr_client

START, COMPLETE, CALLBACK = "/api/v1/auth/start", "/api/v1/auth/complete", "/api/v1/auth/callback"


def post(api, url: str, body: object):
    return api.post(url, data=json.dumps(body), content_type="application/json")


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["error"] is None and body["request_id"] == response["X-Request-ID"]
    return body["data"]


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["data"] is None and body["error"]["code"] == code
    return body["error"]


def test_start_then_complete_links_the_account_and_its_token_works(world):
    api = world.alpha.api()
    started = ok(post(api, START, {}))
    assert started["mode"] == "oob"
    assert uuid.UUID(started["state"])
    url = urlsplit(started["authorize_url"])
    assert url.path == "/services/oauth/authorize"
    assert parse_qs(url.query) == {"oauth_token": [started["oauth_token"]], "perms": ["write"]}

    verifier = approve(world.sandbox, started["oauth_token"], perms="write")
    linked = ok(post(api, COMPLETE, {"oauth_token": started["oauth_token"], "oauth_verifier": verifier}))

    account = FlickrAccount.objects.get(user_id=linked["user_id"])
    assert account.client == world.alpha.model
    assert (account.nsid, account.perms) == (sandbox_nsid(world.sandbox, 3), "write")
    assert linked["created"] is True
    answer = flickr_client.call_rest(account.credentials(), "flickr.test.login", {})
    assert answer["user"]["id"] == account.nsid


@pytest.mark.parametrize("typed", ["{d}", "{plain}", "{spaced}", " {d} "])
def test_the_out_of_band_code_is_accepted_with_or_without_dashes_and_spaces(world, typed):
    api = world.alpha.api()
    started = ok(post(api, START, {"perms": "read"}))
    code = approve(world.sandbox, started["oauth_token"], perms="read")
    digits = code.replace("-", "")
    entered = typed.format(d=code, plain=digits, spaced=f"{digits[:3]} {digits[3:6]} {digits[6:]}")
    linked = ok(post(api, COMPLETE, {"oauth_token": started["oauth_token"], "oauth_verifier": entered}))
    assert FlickrAccount.objects.get(user_id=linked["user_id"]).perms == "read"


def test_the_callback_mode_finishes_through_get_callback(world):
    api = world.alpha.api()
    started = ok(
        post(api, START, {"callback_url": "https://integrator.example/flickr-back", "perms": "delete"})
    )
    assert started["mode"] == "callback"
    verifier = approve(world.sandbox, started["oauth_token"], perms="delete")
    response = api.get(CALLBACK, {"oauth_token": started["oauth_token"], "oauth_verifier": verifier})
    data = ok(response)
    assert data["status"] == "ok"
    assert FlickrAccount.objects.get(user_id=data["user_id"]).perms == "delete"


def test_linking_the_same_flickr_account_again_keeps_its_user_id(world):
    api = world.alpha.api()
    user_ids = []
    for _ in range(2):
        started = ok(post(api, START, {}))
        verifier = approve(world.sandbox, started["oauth_token"])
        user_ids.append(
            ok(post(api, COMPLETE, {"oauth_token": started["oauth_token"], "oauth_verifier": verifier}))
        )
    assert user_ids[0]["user_id"] == user_ids[1]["user_id"]
    assert user_ids[1]["created"] is False
    assert FlickrAccount.objects.filter(nsid=sandbox_nsid(world.sandbox, 3)).count() == 1


def test_a_request_token_completes_only_once(world):
    api = world.alpha.api()
    started = ok(post(api, START, {}))
    body = {
        "oauth_token": started["oauth_token"],
        "oauth_verifier": approve(world.sandbox, started["oauth_token"]),
    }
    ok(post(api, COMPLETE, body))
    problem = error(post(api, COMPLETE, body), 400, "ERR_INVALID_STATE")
    assert problem["message"] == "invalid_state_or_token"
    assert problem["details"]["reason"] == "used"


def test_another_clients_request_token_is_answered_like_an_unknown_one(world):
    started = ok(post(world.alpha.api(), START, {}))
    verifier = approve(world.sandbox, started["oauth_token"])
    theirs = error(
        post(world.beta.api(), COMPLETE, {"oauth_token": started["oauth_token"], "oauth_verifier": verifier}),
        400,
        "ERR_INVALID_STATE",
    )
    unknown = error(
        post(
            world.beta.api(), COMPLETE, {"oauth_token": "72157000000000000-0000", "oauth_verifier": verifier}
        ),
        400,
        "ERR_INVALID_STATE",
    )
    assert theirs == unknown
    # and the rightful client can still finish it
    ok(post(world.alpha.api(), COMPLETE, {"oauth_token": started["oauth_token"], "oauth_verifier": verifier}))


def test_a_wrong_state_is_refused(world):
    api = world.alpha.api()
    started = ok(post(api, START, {}))
    verifier = approve(world.sandbox, started["oauth_token"])
    body = {"oauth_token": started["oauth_token"], "oauth_verifier": verifier, "state": str(uuid.uuid4())}
    error(post(api, COMPLETE, body), 400, "ERR_INVALID_STATE")
    ok(post(api, COMPLETE, {**body, "state": started["state"]}))


def test_a_wrong_code_can_be_corrected(world):
    api = world.alpha.api()
    started = ok(post(api, START, {}))
    verifier = approve(world.sandbox, started["oauth_token"])
    wrong = "999-999-999" if verifier != "999-999-999" else "111-111-111"
    problem = error(
        post(api, COMPLETE, {"oauth_token": started["oauth_token"], "oauth_verifier": wrong}),
        400,
        "ERR_INVALID_VERIFIER",
    )
    assert "123-456-789" in problem["message"]
    ok(post(api, COMPLETE, {"oauth_token": started["oauth_token"], "oauth_verifier": verifier}))


def test_an_attempt_older_than_ten_minutes_has_expired(world, later):
    api = world.alpha.api()
    started = ok(post(api, START, {}))
    verifier = approve(world.sandbox, started["oauth_token"])
    later(601)
    error(
        post(api, COMPLETE, {"oauth_token": started["oauth_token"], "oauth_verifier": verifier}),
        400,
        "ERR_INVALID_STATE",
    )
    assert not FlickrAccount.objects.filter(nsid=sandbox_nsid(world.sandbox, 3)).exists()


@pytest.mark.parametrize(
    "body",
    [{}, {"oauth_token": "x"}, {"oauth_verifier": "123-456-789"}, {"oauth_token": "", "oauth_verifier": ""}],
)
def test_complete_without_token_or_verifier_is_the_originals_400(world, body):
    problem = error(post(world.alpha.api(), COMPLETE, body), 400, "ERR_INVALID_REQUEST")
    assert problem["message"] == "oauth_token and oauth_verifier are required"


def test_a_verifier_that_cannot_be_one_is_refused_before_asking_flickr(world):
    api = world.alpha.api()
    started = ok(post(api, START, {}))
    before = world.sandbox.app.counters.snapshot()
    error(
        post(api, COMPLETE, {"oauth_token": started["oauth_token"], "oauth_verifier": "12 3"}),
        400,
        "ERR_INVALID_REQUEST",
    )
    assert world.sandbox.app.counters.snapshot() == before


def test_bad_perms_are_a_validation_error(world):
    problem = error(post(world.alpha.api(), START, {"perms": "admin"}), 400, "ERR_INVALID_REQUEST")
    assert any(d.startswith("perms:") for d in problem["details"])


def test_the_api_key_is_required(world):
    from rest_framework.test import APIClient

    error(post(APIClient(), START, {}), 401, "ERR_UNAUTHORIZED")


def test_flickr_unreachable_is_a_503_with_retry_after(world, settings, closed_port_url):
    settings.FLICKR_OAUTH_REQUEST_TOKEN_URL = f"{closed_port_url}/services/oauth/request_token"
    response = post(world.alpha.api(), START, {})
    error(response, 503, "ERR_FLICKR_UNREACHABLE")
    assert response["Retry-After"]


def test_a_wrong_server_secret_is_reported_as_a_rejected_signature(world, settings):
    settings.FLICKR_API_SECRET = "not-the-right-secret"
    problem = error(post(world.alpha.api(), START, {}), 502, "ERR_FLICKR_SIGNATURE_REJECTED")
    assert "FLICKR_API_SECRET" in problem["message"]
    assert "not-the-right-secret" not in json.dumps(problem)


def test_an_original_client_sending_the_hubs_own_key_links_through_the_hubs_app(world, settings):
    api = world.alpha.api()
    started = ok(post(api, START, {"api_key": settings.FLICKR_API_KEY, "api_secret": "whatever it had"}))
    verifier = approve(world.sandbox, started["oauth_token"])
    linked = ok(post(api, COMPLETE, {"oauth_token": started["oauth_token"], "oauth_verifier": verifier}))
    assert FlickrAccount.objects.get(user_id=linked["user_id"]).app.is_server_app


def test_another_app_is_refused_unless_the_operator_allows_it(world):
    problem = error(
        post(world.alpha.api(), START, {"api_key": "a" * 32, "api_secret": "b" * 16}),
        400,
        "ERR_INVALID_REQUEST",
    )
    assert "CONNECT_ALLOW_USER_APPS" in " ".join(problem["details"])


def test_a_persons_own_app_signs_their_account_when_allowed(world, settings):
    settings.CONNECT_ALLOW_USER_APPS = True
    key, secret = "c0ffee" + "0" * 26, "1234567890abcdef"
    world.sandbox.app.state.add_consumer(key, secret, name="Their own app")
    api = world.alpha.api()
    started = ok(post(api, START, {"api_key": key, "api_secret": secret}))
    verifier = approve(world.sandbox, started["oauth_token"])
    linked = ok(post(api, COMPLETE, {"oauth_token": started["oauth_token"], "oauth_verifier": verifier}))
    account = FlickrAccount.objects.get(user_id=linked["user_id"])
    assert account.app.api_key == key and account.app.secret() == secret
    assert flickr_client.call_rest(account.credentials(), "flickr.test.login", {})["stat"] == "ok"


def test_a_wrong_own_app_secret_is_the_callers_problem_and_stores_nothing(world, settings):
    settings.CONNECT_ALLOW_USER_APPS = True
    key = "deadbeef" + "0" * 24
    world.sandbox.app.state.add_consumer(key, "right-secret-123", name="Theirs")
    error(
        post(world.alpha.api(), START, {"api_key": key, "api_secret": "wrong-secret-456"}),
        400,
        "ERR_FLICKR_APP_REJECTED",
    )
    assert not FlickrApp.objects.filter(api_key=key).exists()


def test_the_pending_attempt_keeps_the_request_token_secret_encrypted(world):
    started = ok(post(world.alpha.api(), START, {}))
    secret = world.sandbox.app.state.request_tokens[started["oauth_token"]].secret
    stored = cache.get(f"accounts:oauth:req:{started['oauth_token']}")
    assert stored is not None
    assert secret not in json.dumps(stored)


def test_the_schema_documents_the_auth_endpoints(client):
    schema = client.get("/api/schema/?format=json").json()
    for path in (START, COMPLETE, CALLBACK):
        assert path in schema["paths"]
