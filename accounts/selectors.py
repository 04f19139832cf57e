"""Reads on accounts that other apps use."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from accounts import lookups
from accounts.models import ApiClient, FlickrAccount, FlickrApp, Invitation, hash_invitation_token
from flickrhub import sqlrows

# An account with its Flickr app, read on every enqueue (flickrhub/sqlrows.py says why by hand).
_ACCOUNT_APP = sqlrows.Join((FlickrAccount, "a"), (FlickrApp, "p", "a.app"))
# It is kept for a moment in each process (accounts/lookups.py), by client and user_id.
ACCOUNTS = "accounts"


def account_for_client(*, client: ApiClient, user_id: str) -> FlickrAccount | None:
    """The client's account with this `user_id`, or None — for an unknown id, a malformed id
    and another client's id alike, so an answer never reveals that an id exists. What it finds
    may be up to API_LOOKUP_CACHE_SECONDS old (accounts/lookups.py): for the enqueue paths,
    whose worker reads the account again."""
    try:
        parsed = uuid.UUID(str(user_id))
    except (ValueError, AttributeError, TypeError):
        return None
    sql = _ACCOUNT_APP.select() + ' WHERE a."client_id" = %s AND a."user_id" = %s'
    params = [sqlrows.param(ApiClient, "pk", client.pk), sqlrows.param(FlickrAccount, "user_id", parsed)]
    account = lookups.remembered(ACCOUNTS, (client.pk, parsed), lambda: _ACCOUNT_APP.first(sql, params))
    if account is not None:
        FlickrAccount._meta.get_field("client").set_cached_value(account, client)  # type: ignore[union-attr]
    return account


def clients_linkable_by(user: Any) -> QuerySet[ApiClient]:
    """The active clients a signed-in person may link accounts for: the ones they manage, or
    every one for staff."""
    if not getattr(user, "is_authenticated", False):
        return ApiClient.objects.none()
    clients = ApiClient.objects.filter(is_active=True)
    return clients if user.is_staff else clients.filter(managers=user)


def invitation_by_token(token: str) -> Invitation | None:
    if not token or len(token) > 100:
        return None
    return Invitation.objects.select_related("client").filter(token_hash=hash_invitation_token(token)).first()


def accounts_listing() -> QuerySet[FlickrAccount]:
    """Every linked account with what `flickr_tokens` and the admin show beside it."""
    return FlickrAccount.objects.select_related("client", "app").order_by("client__name", "created_at")
