"""A person linking a Flickr account, in a real browser, against the live hub and the sandbox."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from accounts.models import FlickrAccount, Invitation
from accounts.services import invitation_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long enough password 1"


@pytest.fixture
def hub(world, live_server, settings):
    """The live hub with a manager of client `alpha`, Flickr calling back to it."""
    settings.PUBLIC_BASE_URL = live_server.url
    user = get_user_model().objects.create_user("maria", password=PASSWORD)
    world.alpha.model.managers.add(user)
    return world


def sign_in(page) -> None:
    page.goto("/connect/")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/connect/")


NSIDS = {"aurora_lens": "46068127@N05", "deltaforge": "136767366@N07"}


def approve_on_flickr(page, username: str) -> None:
    page.wait_for_url("**/services/oauth/authorize**")
    page.get_by_label("Act as").select_option(value=NSIDS[username])
    page.get_by_role("button", name="OK, I'll authorize it").click()


def test_callback_flow_links_and_shows_the_user_id_with_a_working_copy_button(page, hub, shot):
    sign_in(page)
    shot(page, "start")
    page.get_by_label(re.compile("^Read")).check()
    page.get_by_role("button", name="Continue to Flickr").click()
    shot(page, "flickr-authorize")
    approve_on_flickr(page, "deltaforge")

    page.wait_for_url("**/connect/done/")
    shot(page, "done")
    account = FlickrAccount.objects.get(nsid="136767366@N07")
    assert page.get_by_role("heading", level=1).inner_text() == "Your Flickr account is linked"
    assert page.get_by_role("textbox", name="user_id").input_value() == str(account.user_id)
    assert f'"user_id": "{account.user_id}"' in page.locator("#curl-example").inner_text()
    assert account.perms == "read"

    page.get_by_role("button", name="Copy", exact=True).click()
    page.get_by_text("Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == str(account.user_id)


def test_out_of_band_flow_through_an_invitation(page, world, live_server, settings, shot):
    settings.PUBLIC_BASE_URL = ""  # no public address: Flickr shows a code instead of calling back
    _, token = invitation_create(client=world.beta.model, note="for Ann")
    page.goto(f"/connect/invite/{token}/")
    page.wait_for_url("**/connect/")
    assert "for beta" in page.locator("main").inner_text()
    shot(page, "invited")
    page.get_by_role("button", name="Continue to Flickr").click()
    page.wait_for_url("**/connect/code/**")
    shot(page, "code-page")

    with page.context.expect_page() as flickr_tab:
        page.get_by_role("link", name=re.compile("Open Flickr to approve")).click()
    flickr = flickr_tab.value
    approve_on_flickr(flickr, "aurora_lens")
    code = flickr.locator("#verifier").inner_text()
    shot(flickr, "flickr-shows-code")
    flickr.close()

    digits = code.replace("-", "")
    page.get_by_label("Code from Flickr").fill(f"{digits[:3]} {digits[3:6]} {digits[6:]}")
    page.get_by_role("button", name="Link my account").click()
    page.wait_for_url("**/connect/done/")
    shot(page, "done")
    account = FlickrAccount.objects.get(client=world.beta.model, nsid="46068127@N05")
    assert page.get_by_role("textbox", name="user_id").input_value() == str(account.user_id)
    assert Invitation.objects.get().used_at is not None


def test_declining_on_flickr_links_nothing_and_the_hub_says_so(page, hub, shot):
    sign_in(page)
    page.get_by_role("button", name="Continue to Flickr").click()
    page.wait_for_url("**/services/oauth/authorize**")
    page.get_by_role("button", name="No thanks").click()
    assert "You didn't authorize" in page.locator("h1").inner_text()
    shot(page, "declined-on-flickr")

    page.goto("/connect/")
    notice = page.get_by_role("status")
    assert "was not finished" in notice.inner_text() and "nothing was linked" in notice.inner_text()
    shot(page, "back-at-the-hub")
    assert not FlickrAccount.objects.filter(nsid="136767366@N07").exists()


def test_coming_back_after_ten_minutes_is_an_expired_page(page, hub, shot, monkeypatch):
    from accounts import pending

    sign_in(page)
    page.get_by_role("button", name="Continue to Flickr").click()
    page.wait_for_url("**/services/oauth/authorize**")
    real_now = pending.now
    monkeypatch.setattr(pending, "now", lambda: real_now() + 601)  # the person went for coffee
    approve_on_flickr(page, "deltaforge")

    page.wait_for_url("**/connect/callback/**")
    shot(page, "expired")
    assert page.get_by_role("heading", level=1).inner_text() == "This linking attempt has expired"
    assert "Start again" in page.locator("main").inner_text()
    assert not FlickrAccount.objects.filter(nsid="136767366@N07").exists()


def test_a_callback_link_used_twice_is_refused_the_second_time(page, hub, shot):
    sign_in(page)
    callbacks: list[str] = []
    page.on(
        "request",
        lambda request: callbacks.append(request.url) if "/connect/callback/" in request.url else None,
    )
    page.get_by_role("button", name="Continue to Flickr").click()
    approve_on_flickr(page, "deltaforge")
    page.wait_for_url("**/connect/done/")

    response = page.goto(callbacks[0])
    shot(page, "reused")
    assert response.status == 400
    assert page.get_by_role("heading", level=1).inner_text() == "This link has already been used"
    assert FlickrAccount.objects.filter(nsid="136767366@N07").count() == 1


def test_the_start_page_fits_a_phone_and_every_field_is_labelled(page, hub, shot):
    sign_in(page)
    page.set_viewport_size({"width": 375, "height": 740})
    shot(page, "phone")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select')]
             .filter(el => !el.labels || el.labels.length === 0).map(el => el.name)"""
    )
    assert unlabelled == []
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
