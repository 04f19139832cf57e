"""The OAuth 1.0a dance against the sandbox, with plain requests-oauthlib (FLICKR-API.md §1)."""

from __future__ import annotations

from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import requests
from requests_oauthlib import OAuth1

from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, FakeFlickr, SandboxServer
from flickr.fake.testing import SandboxClient
from flickr.tests.conftest import Clock


@pytest.fixture
def app(clock: Clock) -> FakeFlickr:
    return FakeFlickr(seed=1, clock=clock)


def oauth(**kwargs: str) -> OAuth1:
    return OAuth1(SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, **kwargs)


def ask_for_request_token(server: SandboxServer, auth: OAuth1) -> requests.Response:
    return requests.post(f"{server.url}/services/oauth/request_token", auth=auth, timeout=5)


def request_token(server: SandboxServer, callback: str = "oob") -> dict[str, str]:
    answer = ask_for_request_token(server, oauth(callback_uri=callback))
    assert answer.status_code == 200, answer.text
    return dict(parse_qsl(answer.text))


def exchange(server: SandboxServer, rt: dict[str, str], verifier: str, **kwargs: str) -> requests.Response:
    auth = oauth(
        resource_owner_key=rt["oauth_token"],
        resource_owner_secret=rt["oauth_token_secret"],
        verifier=verifier,
        **kwargs,
    )
    return requests.post(f"{server.url}/services/oauth/access_token", auth=auth, timeout=5)


def authorize_url(server: SandboxServer, token: str, perms: str = "read") -> str:
    return f"{server.url}/services/oauth/authorize?oauth_token={token}&perms={perms}"


# ---------------------------------------------------------------- request token


def test_request_token_answer_has_flickrs_shapes(server: SandboxServer) -> None:
    answer = ask_for_request_token(server, oauth(callback_uri="oob"))

    fields = dict(parse_qsl(answer.text))
    token_digits, token_hex = fields["oauth_token"].split("-")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert answer.text.startswith("oauth_callback_confirmed=true&oauth_token=")
    assert len(token_digits) == 17 and token_digits.isdigit()
    assert len(token_hex) == 16 and int(token_hex, 16) >= 0
    assert len(fields["oauth_token_secret"]) == 16


@pytest.mark.parametrize("where", ["auth_header", "query", "body"])
def test_oauth_parameters_are_accepted_in_header_query_or_form_body(
    server: SandboxServer, where: str
) -> None:
    auth = oauth(callback_uri="https://hub.example/callback?next=%2Fhome", signature_type=where)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if where == "body" else {}

    answer = requests.post(
        f"{server.url}/services/oauth/request_token", auth=auth, headers=headers, timeout=5
    )

    assert answer.status_code == 200, answer.text


def test_request_tokens_can_be_asked_for_with_get_too(server: SandboxServer) -> None:
    answer = requests.get(
        f"{server.url}/services/oauth/request_token",
        auth=oauth(callback_uri="oob", signature_type="query"),
        timeout=5,
    )

    assert answer.status_code == 200


def test_a_request_token_needs_a_callback(server: SandboxServer) -> None:
    answer = ask_for_request_token(server, oauth())

    assert answer.status_code == 401
    assert answer.text == "oauth_problem=parameter_absent&oauth_parameters_absent=oauth_callback"


def test_an_unknown_consumer_key_is_refused(server: SandboxServer) -> None:
    auth = OAuth1("0" * 32, SANDBOX_CONSUMER_SECRET, callback_uri="oob")

    answer = ask_for_request_token(server, auth)

    assert answer.status_code == 401
    assert answer.text == "oauth_problem=consumer_key_unknown"


def test_a_wrong_consumer_secret_is_signature_invalid_with_the_base_string(server: SandboxServer) -> None:
    auth = OAuth1(SANDBOX_CONSUMER_KEY, "f" * 16, callback_uri="oob")

    answer = ask_for_request_token(server, auth)

    assert answer.status_code == 401
    assert answer.text.startswith("oauth_problem=signature_invalid&debug_sbs=POST&http%3A%2F%2F127.0.0.1")
    assert "oauth_consumer_key%3D" + SANDBOX_CONSUMER_KEY in answer.text


def test_a_timestamp_five_minutes_off_is_refused(server: SandboxServer, clock: Clock) -> None:
    stale = str(int(clock.now) - 301)

    answer = ask_for_request_token(server, oauth(callback_uri="oob", timestamp=stale))

    assert answer.status_code == 401
    assert answer.text.startswith("oauth_problem=timestamp_refused")


def test_a_replayed_nonce_is_refused(server: SandboxServer) -> None:
    prepared = requests.Request(
        "POST", f"{server.url}/services/oauth/request_token", auth=oauth(callback_uri="oob")
    ).prepare()

    with requests.Session() as session:
        first = session.send(prepared, timeout=5)
        replay = session.send(prepared, timeout=5)

    assert first.status_code == 200
    assert replay.status_code == 401
    assert replay.text == "oauth_problem=nonce_used"


# ---------------------------------------------------------------- the authorize page


def test_the_authorize_page_names_the_app_the_perms_and_who_to_act_as(
    app: FakeFlickr, server: SandboxServer
) -> None:
    rt = request_token(server)

    page = requests.get(authorize_url(server, rt["oauth_token"], "write"), timeout=5)

    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    assert "FlickrHub (sandbox)" in page.text
    assert '<strong id="perms">write</strong>' in page.text
    assert '<label for="nsid">Act as</label>' in page.text
    for user in app.state.users:
        assert f'<option value="{user.nsid}">' in page.text
    assert 'value="approve"' in page.text and 'value="deny"' in page.text
    assert "<script" not in page.text


@pytest.mark.parametrize("perms", ["admin", ""])
def test_an_unknown_permission_set_gets_flickrs_oops_page(server: SandboxServer, perms: str) -> None:
    rt = request_token(server)

    page = requests.get(authorize_url(server, rt["oauth_token"], perms), timeout=5)

    assert page.status_code == 400
    assert "<h1>Oops!</h1>" in page.text
    assert "Flickr doesn't recognise the permission set." in page.text


def test_approving_redirects_to_the_callback_keeping_its_query(
    app: FakeFlickr, server: SandboxServer
) -> None:
    rt = request_token(server, callback="https://hub.example/flickr/callback?state=abc")
    person = app.state.users[2]

    answer = requests.post(
        f"{server.url}/services/oauth/authorize",
        data={"oauth_token": rt["oauth_token"], "perms": "read", "nsid": person.nsid, "action": "approve"},
        allow_redirects=False,
        timeout=5,
    )

    location = urlsplit(answer.headers["Location"])
    query = parse_qs(location.query)
    assert answer.status_code == 302
    assert (location.netloc, location.path) == ("hub.example", "/flickr/callback")
    assert query["state"] == ["abc"]
    assert query["oauth_token"] == [rt["oauth_token"]]
    assert len(query["oauth_verifier"][0]) == 16


def test_approving_an_out_of_band_request_shows_a_nine_digit_code(
    app: FakeFlickr, server: SandboxServer
) -> None:
    rt = request_token(server, callback="oob")

    page = requests.post(
        f"{server.url}/services/oauth/authorize",
        data={
            "oauth_token": rt["oauth_token"],
            "perms": "delete",
            "nsid": app.state.demo_user.nsid,
            "action": "approve",
        },
        allow_redirects=False,
        timeout=5,
    )

    code = page.text.split('<code id="verifier">')[1].split("</code>")[0]
    assert page.status_code == 200
    assert len(code) == 11 and code[3] == code[7] == "-"
    assert code.replace("-", "").isdigit()
    assert exchange(server, rt, code).status_code == 200


def test_denying_shows_a_page_and_never_calls_the_app_back(app: FakeFlickr, server: SandboxServer) -> None:
    rt = request_token(server, callback="https://hub.example/callback")

    page = requests.post(
        f"{server.url}/services/oauth/authorize",
        data={
            "oauth_token": rt["oauth_token"],
            "perms": "read",
            "nsid": app.state.demo_user.nsid,
            "action": "deny",
        },
        allow_redirects=False,
        timeout=5,
    )

    assert page.status_code == 200
    assert "Location" not in page.headers
    assert "You didn't authorize FlickrHub (sandbox)" in page.text
    assert exchange(server, rt, "0" * 16).text == "oauth_problem=token_rejected"


# ---------------------------------------------------------------- access token


def test_the_access_token_answer_names_the_person(app: FakeFlickr, server: SandboxServer) -> None:
    rt = request_token(server, callback="https://hub.example/callback")
    person = app.state.users[1]
    verifier = app.state.approve(rt["oauth_token"], person.nsid, "write")

    answer = exchange(server, rt, verifier)

    fields = dict(parse_qsl(answer.text))
    assert answer.status_code == 200
    assert list(fields) == ["fullname", "oauth_token", "oauth_token_secret", "user_nsid", "username"]
    assert f"user_nsid={person.nsid.replace('@', '%40')}" in answer.text
    assert f"fullname={person.fullname.replace(' ', '%20')}" in answer.text
    assert fields["username"] == person.username
    granted = SandboxClient(
        server.url,
        SANDBOX_CONSUMER_KEY,
        SANDBOX_CONSUMER_SECRET,
        fields["oauth_token"],
        fields["oauth_token_secret"],
    ).json("flickr.auth.oauth.checkToken")
    assert granted["oauth"]["perms"]["_content"] == "write"
    assert granted["oauth"]["user"]["nsid"] == person.nsid


def test_a_request_token_is_exchanged_only_once(app: FakeFlickr, server: SandboxServer) -> None:
    rt = request_token(server)
    verifier = app.state.approve(rt["oauth_token"], app.state.demo_user.nsid, "read")

    first = exchange(server, rt, verifier)
    second = exchange(server, rt, verifier)

    assert first.status_code == 200
    assert (second.status_code, second.text) == (401, "oauth_problem=token_rejected")


def test_a_wrong_verifier_is_rejected(app: FakeFlickr, server: SandboxServer) -> None:
    rt = request_token(server, callback="https://hub.example/cb")
    app.state.approve(rt["oauth_token"], app.state.demo_user.nsid, "read")

    answer = exchange(server, rt, "0123456789abcdef")

    assert (answer.status_code, answer.text) == (401, "oauth_problem=token_rejected")


def test_exchanging_needs_a_verifier(server: SandboxServer) -> None:
    rt = request_token(server)
    auth = oauth(resource_owner_key=rt["oauth_token"], resource_owner_secret=rt["oauth_token_secret"])

    answer = requests.post(f"{server.url}/services/oauth/access_token", auth=auth, timeout=5)

    assert answer.status_code == 401
    assert answer.text == "oauth_problem=parameter_absent&oauth_parameters_absent=oauth_verifier"


def test_a_request_token_left_pending_expires_after_ten_minutes(
    app: FakeFlickr, server: SandboxServer, clock: Clock
) -> None:
    rt = request_token(server)
    verifier = app.state.approve(rt["oauth_token"], app.state.demo_user.nsid, "read")

    clock.now += 601
    answer = exchange(server, rt, verifier, timestamp=str(int(clock.now)))
    page = requests.get(authorize_url(server, rt["oauth_token"]), timeout=5)

    assert (answer.status_code, answer.text) == (401, "oauth_problem=token_rejected")
    assert page.status_code == 400 and "invalid or has expired" in page.text
