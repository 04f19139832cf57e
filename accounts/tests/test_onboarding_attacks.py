"""Linking attempts that are not what they seem, beyond test_connect_pages.py and
test_auth_api.py: request tokens carried from one channel or browser to another, a verifier
paired with the wrong request token, forms without their CSRF token, and sign-in and sign-out
addresses that try to send the person off the hub. None links an account or leaves the site.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import FlickrAccount
from accounts.tests.conftest import approve, sandbox_nsid

PASSWORD = "a long enough password 1"
OFF_SITE = [
    "https://evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "\\\\evil.example",
    "https:evil.example",
    "http://testserver@evil.example/",
    "javascript:alert(1)",
    "https://evil.example/connect/",
    " https://evil.example/",
]


@pytest.fixture(autouse=True)
def _quick_passwords(settings):
    # Many sign-ins here; the production hasher's deliberate slowness is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def people(world):
    """Two people who each manage alpha, signed in in their own browsers."""
    browsers = []
    for name in ("maria", "lin"):
        user = get_user_model().objects.create_user(name, password=PASSWORD)
        world.alpha.model.managers.add(user)
        browser = Client()
        browser.force_login(user)
        browsers.append(browser)
    return browsers


def start_in(browser: Client, world) -> str:
    """Starts an out-of-band attempt in this browser; returns its request token."""
    response = browser.post("/connect/", {"client": str(world.alpha.model.pk), "perms": "write"})
    assert response.status_code == 302
    return response["Location"].rstrip("/").rsplit("/", 1)[-1]


def linked(world, index: int = 3) -> bool:
    return FlickrAccount.objects.filter(nsid=sandbox_nsid(world.sandbox, index)).exists()


# ------------------------------------------------------------------ forged and replayed tokens


def test_a_request_token_from_another_browser_opens_no_code_page_and_takes_no_code(people, world):
    maria, lin = people
    oauth_token = start_in(maria, world)
    code = approve(world.sandbox, oauth_token)
    for response in (
        lin.get(f"/connect/code/{oauth_token}/"),
        lin.post(f"/connect/code/{oauth_token}/", {"code": code}),
        lin.get("/connect/callback/", {"oauth_token": oauth_token, "oauth_verifier": code}),
    ):
        assert response.status_code == 400
        assert "does not belong to a linking attempt" in text(response)
    assert not linked(world)
    # the person who started it still can
    assert maria.post(f"/connect/code/{oauth_token}/", {"code": code})["Location"] == "/connect/done/"


def test_a_token_started_through_the_api_cannot_be_finished_on_the_pages(people, world, settings):
    settings.PUBLIC_BASE_URL = "http://testserver"
    maria, _ = people
    started = world.alpha.api().post("/api/v1/auth/start", {}, format="json").json()["data"]
    verifier = approve(world.sandbox, started["oauth_token"])
    page = maria.get(
        "/connect/callback/", {"oauth_token": started["oauth_token"], "oauth_verifier": verifier}
    )
    assert page.status_code == 400
    assert not linked(world)


def test_a_token_started_on_the_pages_cannot_be_finished_through_the_api(people, world):
    maria, _ = people
    oauth_token = start_in(maria, world)
    code = approve(world.sandbox, oauth_token)
    response = world.alpha.api().post(
        "/api/v1/auth/complete", {"oauth_token": oauth_token, "oauth_verifier": code}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ERR_INVALID_STATE"
    assert not linked(world)


def test_a_verifier_of_one_attempt_does_not_finish_another(people, world):
    maria, _ = people
    first, second = start_in(maria, world), start_in(maria, world)
    first_code = approve(world.sandbox, first, index=0)
    second_code = approve(world.sandbox, second, index=3)
    wrong = maria.post(f"/connect/code/{second}/", {"code": first_code})
    assert wrong.status_code == 400
    assert "Flickr refused the verification code" in text(wrong)
    assert not linked(world, 3)
    # the attempt stays open for its own code
    assert maria.post(f"/connect/code/{second}/", {"code": second_code})["Location"] == "/connect/done/"
    assert linked(world, 3)


def test_a_finished_callback_replayed_in_the_same_browser_links_nothing_more(people, world, settings):
    settings.PUBLIC_BASE_URL = "http://testserver"
    maria, _ = people
    response = maria.post("/connect/", {"client": str(world.alpha.model.pk), "perms": "read"})
    oauth_token = parse_qs(urlsplit(response["Location"]).query)["oauth_token"][0]
    verifier = approve(world.sandbox, oauth_token, perms="read")
    query = {"oauth_token": oauth_token, "oauth_verifier": verifier}
    assert maria.get("/connect/callback/", query)["Location"] == "/connect/done/"
    for _ in range(3):
        again = maria.get("/connect/callback/", query)
        assert again.status_code == 400 and "already been used" in text(again)
    assert FlickrAccount.objects.filter(nsid=sandbox_nsid(world.sandbox, 3)).count() == 1


@pytest.mark.parametrize(
    "query",
    [
        {"oauth_token": "72157000000000000-0000000000000000", "oauth_verifier": "1234567890abcdef"},
        {"oauth_token": "../../admin/", "oauth_verifier": "x"},
        {"oauth_token": "<script>alert(1)</script>", "oauth_verifier": "<b>"},
        {"oauth_token": "' OR 1=1 --", "oauth_verifier": "123-456-789"},
    ],
)
@pytest.mark.filterwarnings("ignore::django.core.cache.backends.base.CacheKeyWarning")
def test_a_forged_callback_links_nothing_and_echoes_nothing(people, world, query):
    maria, _ = people
    response = maria.get("/connect/callback/", query)
    assert 400 <= response.status_code < 500
    page = response.content.decode()
    assert "<script>alert(1)</script>" not in page and "<b>" not in page
    assert FlickrAccount.objects.count() == 3  # the world's, nothing more


# ------------------------------------------------------------------ CSRF


def test_the_code_form_needs_its_csrf_token(world):
    user = get_user_model().objects.create_user("csrf", password=PASSWORD)
    world.alpha.model.managers.add(user)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    start_page = browser.get("/connect/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', start_page.content.decode()).group(1)
    started = browser.post(
        "/connect/", {"client": str(world.alpha.model.pk), "perms": "read", "csrfmiddlewaretoken": token}
    )
    code_page = started["Location"]
    code = approve(world.sandbox, code_page.rstrip("/").rsplit("/", 1)[-1], perms="read")

    refused = browser.post(code_page, {"code": code})
    assert refused.status_code == 403
    assert "The form has expired" in text(refused)
    assert not linked(world)

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get(code_page).content.decode())
    assert browser.post(code_page, {"code": code, "csrfmiddlewaretoken": token.group(1)}).status_code == 302
    assert linked(world)


@pytest.mark.parametrize("path", ["/connect/login/", "/admin/login/"])
def test_sign_in_forms_need_their_csrf_token(world, path):
    get_user_model().objects.create_user("lin", password=PASSWORD)
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(path, {"username": "lin", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in browser.session


def test_sign_out_needs_its_csrf_token(people, world):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(get_user_model().objects.get(username="maria"))
    assert browser.post("/connect/logout/").status_code == 403
    assert browser.get("/connect/").status_code == 200  # still signed in
    assert "_auth_user_id" in browser.session


# ------------------------------------------------------------------ open redirects


@pytest.mark.parametrize("target", OFF_SITE)
@pytest.mark.parametrize("path", ["/connect/login/", "/admin/login/"])
def test_signing_in_never_sends_the_person_off_the_hub(world, path, target):
    get_user_model().objects.create_user("lin", password=PASSWORD, is_staff=True)
    browser = Client()
    response = browser.post(
        f"{path}?next={target}", {"username": "lin", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.scheme == "" and location.netloc == "", response["Location"]
    assert response["Location"].startswith("/") and not response["Location"].startswith(("//", "/\\"))


@pytest.mark.parametrize("target", OFF_SITE)
def test_signing_out_never_sends_the_person_off_the_hub(people, world, target):
    maria, _ = people
    response = maria.post(f"/connect/logout/?next={target}", {"next": target})
    assert response.status_code == 302
    assert response["Location"] == "/connect/"


def test_a_signed_in_visit_to_the_login_page_with_an_off_site_next_stays_on_the_hub(people, world):
    maria, _ = people
    for target in OFF_SITE:
        response = maria.get("/connect/login/", {"next": target})
        assert response.status_code == 302 and response["Location"] == "/connect/", target


def test_the_callback_flickr_is_given_is_the_hubs_own(people, world, settings):
    # Flickr sends the person back to the address the hub gives it, never one from the request.
    settings.PUBLIC_BASE_URL = "http://testserver"
    maria, _ = people
    response = maria.post(
        "/connect/?oauth_callback=https://evil.example/",
        {
            "client": str(world.alpha.model.pk),
            "perms": "write",
            "oauth_callback": "https://evil.example/",
            "callback": "https://evil.example/",
            "next": "https://evil.example/",
        },
    )
    oauth_token = parse_qs(urlsplit(response["Location"]).query)["oauth_token"][0]
    assert (
        world.sandbox.app.state.request_tokens[oauth_token].callback == "http://testserver/connect/callback/"
    )
