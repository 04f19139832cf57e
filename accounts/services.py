"""Writes on accounts: creating API clients, linking and marking Flickr accounts."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from accounts.models import AccountStatus, ApiClient, FlickrAccount, FlickrApp


def api_client_create(*, name: str) -> tuple[ApiClient, str]:
    """Creates a client and returns it with its API key — the only time the key is known."""
    key = ApiClient.generate_key()
    client = ApiClient(name=name)
    client.set_key(key)
    client.save()
    return client, key


def flickr_app_get_or_create(
    *, api_key: str, api_secret: str, name: str = "", server_app: bool = False
) -> FlickrApp:
    """The app row for a consumer key, its secret updated to the one given."""
    with transaction.atomic():
        app = FlickrApp.objects.select_for_update().filter(api_key=api_key).first()
        if app is None:
            app = FlickrApp(api_key=api_key, name=name or ("Server app" if server_app else api_key[:8]))
        if server_app:
            app.is_server_app = True
        app.set_secret(api_secret)
        app.save()
    return app


def flickr_server_app() -> FlickrApp:
    """The app configured by FLICKR_API_KEY / FLICKR_API_SECRET."""
    if not settings.FLICKR_API_KEY or not settings.FLICKR_API_SECRET:
        raise ValueError("FLICKR_API_KEY and FLICKR_API_SECRET are not set: the hub has no Flickr app.")
    return flickr_app_get_or_create(
        api_key=settings.FLICKR_API_KEY, api_secret=settings.FLICKR_API_SECRET, server_app=True
    )


def account_link(
    *,
    client: ApiClient,
    app: FlickrApp,
    nsid: str,
    username: str,
    fullname: str,
    perms: str,
    token: str,
    token_secret: str,
) -> tuple[FlickrAccount, bool]:
    """Stores a Flickr account's access token for a client. Linking the same Flickr account
    again (same client and app) replaces the token and keeps the `user_id` integrators know.
    Returns the account and whether it was new."""
    with transaction.atomic():
        account = FlickrAccount.objects.select_for_update().filter(client=client, app=app, nsid=nsid).first()
        created = account is None
        if account is None:
            account = FlickrAccount(client=client, app=app, nsid=nsid)
        account.username = username
        account.fullname = fullname
        account.perms = perms
        account.status = AccountStatus.ACTIVE
        account.status_reason = ""
        account.set_token(token, token_secret)
        account.save()
    return account, created


def account_mark_needs_relink(*, account_id: int, reason: str) -> None:
    """Flickr rejected the account's token: no job will use it until the person links again."""
    FlickrAccount.objects.filter(pk=account_id, status=AccountStatus.ACTIVE).update(
        status=AccountStatus.NEEDS_RELINK, status_reason=reason[:300]
    )
