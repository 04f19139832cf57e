"""The operator's admin: accounts, clients, invitations, apps — secrets never on a page."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import AccountStatus, ApiClient, FlickrAccount, Invitation
from flickr.fake import SANDBOX_CONSUMER_SECRET


@pytest.fixture
def operator(world) -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "a long enough password 1")
    browser = Client()
    browser.force_login(user)
    return browser


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_no_admin_page_shows_a_token_or_secret(operator, world):
    account = world.alpha.accounts[0]
    pages = [
        page(operator.get("/admin/accounts/flickraccount/")),
        page(operator.get(f"/admin/accounts/flickraccount/{account.pk}/change/")),
        page(operator.get("/admin/accounts/flickrapp/")),
        page(operator.get(f"/admin/accounts/flickrapp/{account.app_id}/change/")),
        page(operator.get(f"/admin/accounts/apiclient/{world.alpha.model.pk}/change/")),
    ]
    everything = "".join(pages)
    assert "•••••••• (encrypted)" in pages[1]
    for token, secret in world.tokens.values():
        assert token not in everything and secret not in everything
    assert SANDBOX_CONSUMER_SECRET not in everything
    assert world.alpha.key not in everything


def test_accounts_are_found_by_user_id_nsid_and_username_and_filtered(operator, world):
    account = world.beta.accounts[0]
    for term in (str(account.user_id), account.nsid, account.username):
        listing = page(operator.get("/admin/accounts/flickraccount/", {"q": term}))
        assert "1 result" in listing
    filtered = page(
        operator.get("/admin/accounts/flickraccount/", {"client__id__exact": str(world.alpha.model.pk)})
    )
    assert str(world.alpha.accounts[1].user_id) in filtered and str(account.user_id) not in filtered
    by_perms = page(operator.get("/admin/accounts/flickraccount/", {"perms__exact": "read"}))
    assert (
        str(world.alpha.accounts[1].user_id) in by_perms
        and str(world.alpha.accounts[0].user_id) not in by_perms
    )


def test_check_token_now_reports_and_marks_a_dead_token(operator, world):
    alive, dead = world.alpha.accounts
    world.sandbox.app.state.revoke_token(world.tokens[str(dead.user_id)][0])
    response = operator.post(
        "/admin/accounts/flickraccount/",
        {"action": "check_token_now", "_selected_action": [alive.pk, dead.pk]},
        follow=True,
    )
    text = page(response)
    assert f"({alive.user_id}): the token works" in text
    assert f"({dead.user_id}): rejected by Flickr, marked needs re-link" in text
    assert FlickrAccount.objects.get(pk=dead.pk).status == AccountStatus.NEEDS_RELINK
    assert FlickrAccount.objects.get(pk=alive.pk).status == AccountStatus.ACTIVE


def test_revoke_stops_the_account_and_erases_its_token(operator, world):
    account = world.beta.accounts[0]
    operator.post("/admin/accounts/flickraccount/", {"action": "revoke", "_selected_action": [account.pk]})
    account.refresh_from_db()
    assert account.status == AccountStatus.REVOKED
    assert account.oauth_token_encrypted == "" and account.oauth_token_secret_encrypted == ""


def test_a_new_client_shows_its_key_once(operator, world):
    response = operator.post(
        "/admin/accounts/apiclient/add/",
        {"name": "gamma", "is_active": "on", "quota_weight": "1"},
        follow=True,
    )
    key = re.search(r"(fh_[A-Za-z0-9]+_[A-Za-z0-9_-]+)", page(response)).group(1)
    client = ApiClient.objects.get(name="gamma")
    assert client.key_prefix == key[:11]
    assert key not in page(operator.get(f"/admin/accounts/apiclient/{client.pk}/change/"))


def test_an_invitation_made_in_the_admin_shows_its_link_once_and_the_link_works(operator, world):
    response = operator.post(
        "/admin/accounts/invitation/add/",
        {
            "client": str(world.beta.model.pk),
            "note": "for Ann",
            "expires_at_0": "2099-01-01",
            "expires_at_1": "00:00:00",
        },
        follow=True,
    )
    url = re.search(r"(http://testserver/connect/invite/[^/\s]+/)", page(response)).group(1)
    invitation = Invitation.objects.get()
    assert invitation.created_by.username == "root"
    assert url not in page(operator.get(f"/admin/accounts/invitation/{invitation.pk}/change/"))
    assert Client().get(url.replace("http://testserver", ""))["Location"] == "/connect/"
