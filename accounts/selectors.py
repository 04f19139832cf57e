"""Reads on accounts that other apps use."""

from __future__ import annotations

import uuid

from accounts.models import ApiClient, FlickrAccount


def account_for_client(*, client: ApiClient, user_id: str) -> FlickrAccount | None:
    """The client's account with this `user_id`, or None — for an unknown id, a malformed id
    and another client's id alike, so an answer never reveals that an id exists."""
    try:
        parsed = uuid.UUID(str(user_id))
    except (ValueError, AttributeError, TypeError):
        return None
    return FlickrAccount.objects.select_related("app").filter(client=client, user_id=parsed).first()
