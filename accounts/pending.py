"""Linking attempts between "go to Flickr" and "Flickr sent the person back".

A pending attempt lives in the cache (Redis in production, so every web process sees it) under
its request token for PENDING_TTL_SECONDS — ten minutes, as the original service kept its
`oauth:req:<token>` keys. The request-token secret (and a person's own app secret) are stored
encrypted by the vault. An attempt is completed once: `claim` takes it with an atomic
`cache.add`, so two requests with the same token cannot both exchange it, and `finish` leaves
a marker so a second try is told "already used" rather than "unknown".
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from django.core.cache import cache

from accounts import vault

PENDING_TTL_SECONDS = 600
# Long enough for one access-token exchange; released at once when the exchange fails.
_CLAIM_SECONDS = 120
_PREFIX = "accounts:oauth:req:"


def now() -> float:
    """The clock pending attempts are timed by (tests move it)."""
    return time.time()


@dataclass
class PendingAuthorization:
    oauth_token: str
    token_secret_encrypted: str = field(repr=False)
    client_id: str
    perms: str
    callback: str  # a URL, or "oob"
    channel: str  # "browser", "api" or "shell": who may complete it
    consumer_key: str
    # Empty for the hub's own app (its secret is in the FlickrApp row); set, encrypted, for an
    # app key and secret a person brought along.
    consumer_secret_encrypted: str = field(default="", repr=False)
    state: str = field(default_factory=lambda: str(uuid.uuid4()))
    invitation_id: int | None = None
    user_id: str | None = None  # the user_id a new account gets (flickr_auth --user-id)
    created_at: float = field(default_factory=now)
    failed_tries: int = 0

    @property
    def mode(self) -> str:
        return "oob" if self.callback == "oob" else "callback"

    @property
    def expired(self) -> bool:
        return now() - self.created_at > PENDING_TTL_SECONDS

    def token_secret(self) -> str:
        return vault.decrypt(self.token_secret_encrypted)


def _key(oauth_token: str) -> str:
    # Request tokens are short ASCII strings from Flickr; anything else is looked up as-is and
    # simply not found. Length-capped so a caller cannot make huge cache keys.
    return _PREFIX + oauth_token[:200]


def save(pending: PendingAuthorization) -> None:
    remaining = max(1, int(PENDING_TTL_SECONDS - (now() - pending.created_at)))
    cache.set(_key(pending.oauth_token), asdict(pending), timeout=remaining)


def get(oauth_token: str) -> PendingAuthorization | None:
    """The live attempt for this request token, or None (unknown, expired or used)."""
    data: Any = cache.get(_key(oauth_token))
    if not isinstance(data, dict):
        return None
    try:
        pending = PendingAuthorization(**data)
    except TypeError:
        return None  # written by another version of the hub
    return None if pending.expired else pending


def was_used(oauth_token: str) -> bool:
    return cache.get(_key(oauth_token) + ":done") is not None


def claim(pending: PendingAuthorization) -> bool:
    """Take the attempt for one completion; False when another request holds or spent it."""
    if was_used(pending.oauth_token):
        return False
    return bool(cache.add(_key(pending.oauth_token) + ":claim", 1, timeout=_CLAIM_SECONDS))


def release(pending: PendingAuthorization, *, count_failure: bool = False) -> None:
    """Give a claimed attempt back (the exchange failed and may be tried again)."""
    if count_failure:
        pending.failed_tries += 1
        save(pending)
    cache.delete(_key(pending.oauth_token) + ":claim")


def finish(pending: PendingAuthorization) -> None:
    key = _key(pending.oauth_token)
    cache.set(key + ":done", 1, timeout=PENDING_TTL_SECONDS)
    cache.delete(key)
    cache.delete(key + ":claim")


def discard(pending: PendingAuthorization) -> None:
    """Forget an attempt that can never succeed (too many wrong codes)."""
    key = _key(pending.oauth_token)
    cache.delete(key)
    cache.delete(key + ":claim")
