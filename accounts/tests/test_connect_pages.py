"""The /connect/ pages with Django's test client, against the sandbox."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import FlickrAccount, Invitation
from accounts.services import invitation_create
from accounts.tests.conftest import approve, sandbox_nsid


@pytest.fixture
def manager(world):
    user = get_user_model().objects.create_user("maria", password="a long enough password 1")
    world.alpha.model.managers.add(user)
    browser = Client()
    browser.force_login(user)
    return browser


def start(browser: Client, world, **fields: str):
    return browser.post("/connect/", {"client": str(world.alpha.model.pk), "perms": "write", **fields})


def oauth_token_of(response) -> str:
    return response["Location"].rstrip("/").rsplit("/", 1)[-1]


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_a_stranger_is_told_how_to_get_in(client, world):
    page = text(client.get("/connect/"))
    assert "Sign in" in page and "invitation" in page
    assert "<form" not in page


def test_a_manager_chooses_among_the_clients_they_manage(manager, world):
    page = text(manager.get("/connect/"))
    assert world.alpha.model.name in page
    assert f'value="{world.beta.model.pk}"' not in page
    assert 'type="radio" name="perms" value="write"' in page and "checked" in page


def test_a_manager_cannot_link_for_a_client_they_do_not_manage(manager, world):
    response = manager.post("/connect/", {"client": str(world.beta.model.pk), "perms": "write"})
    assert response.status_code == 400
    assert "Select a valid choice" in text(response)


def test_staff_may_link_for_any_client(world):
    staff = get_user_model().objects.create_user("op", password="x" * 20, is_staff=True)
    browser = Client()
    browser.force_login(staff)
    page = text(browser.get("/connect/"))
    assert world.alpha.model.name in page and world.beta.model.name in page


def test_someone_managing_no_client_is_told_so(world):
    browser = Client()
    browser.force_login(get_user_model().objects.create_user("nobody", password="x" * 20))
    response = browser.get("/connect/")
    assert response.status_code == 403
    assert "do not manage any active API client" in text(response)


def test_out_of_band_flow_from_start_to_user_id(manager, world):
    response = start(manager, world)
    assert response.status_code == 302 and response["Location"].startswith("/connect/code/")
    code_page = manager.get(response["Location"])
    oauth_token = oauth_token_of(response)
    authorize = re.search(r'href="([^"]+/services/oauth/authorize[^"]+)"', code_page.content.decode())
    assert authorize and parse_qs(urlsplit(authorize.group(1).replace("&amp;", "&")).query)["perms"] == [
        "write"
    ]

    code = approve(world.sandbox, oauth_token)
    done = manager.post(response["Location"], {"code": code.replace("-", " ")}, follow=True)

    account = FlickrAccount.objects.get(nsid=sandbox_nsid(world.sandbox, 3))
    page = text(done)
    assert account.client == world.alpha.model
    assert str(account.user_id) in page
    assert "curl -s -X POST http://testserver/api/v1/flickr/rest" in page
    assert "Your Flickr account is linked" in page


def test_a_wrong_code_shows_the_form_again_and_the_right_one_then_works(manager, world):
    response = start(manager, world)
    code = approve(world.sandbox, oauth_token_of(response))
    wrong = manager.post(
        response["Location"], {"code": "000-000-000" if code != "000-000-000" else "111-111-111"}
    )
    assert wrong.status_code == 400
    assert "Flickr refused the verification code" in text(wrong)
    assert 'role="alert"' in text(wrong)
    garbled = manager.post(response["Location"], {"code": "12-34"})
    assert "Enter the 9-digit code" in text(garbled)
    assert manager.post(response["Location"], {"code": code})["Location"] == "/connect/done/"


def test_callback_flow_with_a_public_base_url(manager, world, settings):
    settings.PUBLIC_BASE_URL = "http://testserver"
    response = start(manager, world, perms="read")
    authorize = urlsplit(response["Location"])
    assert authorize.path == "/services/oauth/authorize"
    oauth_token = parse_qs(authorize.query)["oauth_token"][0]
    assert (
        world.sandbox.app.state.request_tokens[oauth_token].callback == "http://testserver/connect/callback/"
    )

    verifier = approve(world.sandbox, oauth_token, perms="read")
    back = manager.get("/connect/callback/", {"oauth_token": oauth_token, "oauth_verifier": verifier})
    assert back["Location"] == "/connect/done/"
    assert FlickrAccount.objects.get(nsid=sandbox_nsid(world.sandbox, 3)).perms == "read"

    again = manager.get("/connect/callback/", {"oauth_token": oauth_token, "oauth_verifier": verifier})
    assert again.status_code == 400
    assert "already been used" in text(again)


def test_a_callback_in_another_browser_is_refused(manager, world, settings):
    settings.PUBLIC_BASE_URL = "http://testserver"
    oauth_token = parse_qs(urlsplit(start(manager, world)["Location"]).query)["oauth_token"][0]
    verifier = approve(world.sandbox, oauth_token)
    other = Client()
    response = other.get("/connect/callback/", {"oauth_token": oauth_token, "oauth_verifier": verifier})
    assert response.status_code == 400
    assert "does not belong to a linking attempt" in text(response)
    assert not FlickrAccount.objects.filter(nsid=sandbox_nsid(world.sandbox, 3)).exists()


def test_coming_back_after_ten_minutes_is_expired(manager, world, settings, later):
    settings.PUBLIC_BASE_URL = "http://testserver"
    oauth_token = parse_qs(urlsplit(start(manager, world)["Location"]).query)["oauth_token"][0]
    verifier = approve(world.sandbox, oauth_token)
    later(601)
    response = manager.get("/connect/callback/", {"oauth_token": oauth_token, "oauth_verifier": verifier})
    assert response.status_code == 400
    assert "has expired" in text(response) and "Start again" in text(response)


def test_a_denial_passed_back_is_explained(manager, world):
    response = manager.get("/connect/callback/", {"denied": "72157"})
    assert response.status_code == 400
    assert "Access was declined on Flickr" in text(response)


def test_flickr_unreachable_is_a_friendly_page(manager, world, settings, closed_port_url):
    settings.FLICKR_OAUTH_REQUEST_TOKEN_URL = f"{closed_port_url}/services/oauth/request_token"
    response = start(manager, world)
    assert response.status_code == 503
    page = text(response)
    assert "Flickr could not be reached" in page and "try again" in page
    assert "Traceback" not in page


def test_a_rejected_signature_is_a_friendly_page(manager, world, settings):
    settings.FLICKR_API_SECRET = "wrong-secret-value"
    response = start(manager, world)
    assert response.status_code == 502
    assert "rejected the hub" in text(response) and "FLICKR_API_SECRET" in text(response)


def test_forms_need_the_csrf_token(world):
    user = get_user_model().objects.create_user("csrf", password="x" * 20)
    world.alpha.model.managers.add(user)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    refused = browser.post("/connect/", {"client": str(world.alpha.model.pk), "perms": "read"})
    assert refused.status_code == 403
    assert "The form has expired" in text(refused) and "reload the page" in text(refused)
    form = browser.get("/connect/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.content.decode()).group(1)
    with_token = {"client": str(world.alpha.model.pk), "perms": "read", "csrfmiddlewaretoken": token}
    assert browser.post("/connect/", with_token).status_code == 302


def test_an_invitation_links_an_account_for_its_client_once(world):
    invitation, token = invitation_create(client=world.beta.model, expires_hours=1, note="for Ann")
    guest = Client()
    assert guest.get(f"/connect/invite/{token}/")["Location"] == "/connect/"
    page = text(guest.get("/connect/"))
    assert f"for <strong>{world.beta.model.name}</strong>" in page
    assert 'name="client"' not in page

    response = guest.post("/connect/", {"perms": "write"})
    code = approve(world.sandbox, oauth_token_of(response), index=0)  # linked for alpha, not beta
    assert guest.post(response["Location"], {"code": code})["Location"] == "/connect/done/"

    account = FlickrAccount.objects.get(client=world.beta.model, nsid=sandbox_nsid(world.sandbox, 0))
    invitation.refresh_from_db()
    assert account.client == world.beta.model
    assert invitation.used_at is not None and invitation.account == account
    used = Client().get(f"/connect/invite/{token}/")
    assert used.status_code == 400 and "already been used" in text(used)


def test_an_invitation_spent_in_another_browser_cannot_be_used_to_finish(world):
    _, token = invitation_create(client=world.beta.model)
    first, second = Client(), Client()
    for browser in (first, second):
        browser.get(f"/connect/invite/{token}/")
    started = [browser.post("/connect/", {"perms": "read"}) for browser in (first, second)]
    codes = [
        approve(world.sandbox, oauth_token_of(r), perms="read", index=i)
        for r, i in zip(started, (0, 1), strict=True)
    ]
    assert first.post(started[0]["Location"], {"code": codes[0]})["Location"] == "/connect/done/"
    late = second.post(started[1]["Location"], {"code": codes[1]})
    assert late.status_code == 400 and "already been used" in text(late)
    assert not FlickrAccount.objects.filter(
        client=world.beta.model, nsid=sandbox_nsid(world.sandbox, 1)
    ).exists()


def test_expired_and_unknown_invitations_are_explained(world):
    _, token = invitation_create(client=world.alpha.model, expires_hours=-1)
    expired = Client().get(f"/connect/invite/{token}/")
    assert expired.status_code == 400 and "has expired" in text(expired)
    unknown = Client().get("/connect/invite/not-a-real-token/")
    assert unknown.status_code == 404 and "not valid" in text(unknown)
    assert Invitation.objects.filter(used_at__isnull=False).count() == 0


def test_the_login_page_signs_a_manager_in_and_back_to_connect(world):
    user = get_user_model().objects.create_user("lin", password="a long enough password 1")
    world.alpha.model.managers.add(user)
    browser = Client()
    response = browser.post(
        "/connect/login/?next=/connect/",
        {"username": "lin", "password": "a long enough password 1", "next": "/connect/"},
    )
    assert response["Location"] == "/connect/"
    assert world.alpha.model.name in text(browser.get("/connect/"))


@pytest.mark.parametrize(
    "url",
    [
        "/connect/callback/",
        "/connect/callback/?oauth_token=&oauth_verifier=",
        "/connect/callback/?oauth_token=" + "x" * 5000 + "&oauth_verifier=1",
        "/connect/code/72157000000000000-0000000000000000/",
        "/connect/invite/" + "y" * 300 + "/",
    ],
)
def test_odd_addresses_get_a_page_that_says_what_to_do_never_an_error(manager, url):
    response = manager.get(url)
    assert 400 <= response.status_code < 500
    assert "What to do" in text(response) and "Start again" in text(response)
