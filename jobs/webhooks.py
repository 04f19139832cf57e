"""Signing callbacks: Standard Webhooks (https://www.standardwebhooks.com/) with a secret per
API client, and the original service's `X-Signature` for jobs that carried a callback_secret.

Standard Webhooks: `webhook-id` (the same for every try of one delivery), `webhook-timestamp`
(Unix seconds of this try) and `webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`, keyed with the base64-decoded part of the `whsec_…` secret. A
receiver verifies with any Standard Webhooks library and rejects stale timestamps, so a
captured callback cannot be replayed later. Several signatures, space-separated, are allowed:
after a rotation both the new and the previous secret sign for ROTATION_OVERLAP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import vault
from accounts.models import ApiClient
from flickrhub.logconfig import register_secret
from jobs.models_callbacks import CallbackSecret

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, not a secret)
# Standard Webhooks asks for 24 to 64 random bytes.
SECRET_BYTES = 32
# After a rotation, the previous secret keeps signing (beside the new one) this long, so a
# receiver has time to switch.
ROTATION_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True)
class SecretView:
    """A client's signing secret, decrypted, for the client's own eyes only."""

    secret: str
    created_at: datetime
    rotated_at: datetime | None
    previous_valid_until: datetime | None


def _new_secret() -> str:
    secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()
    register_secret(secret)  # no log line may ever hold it
    return secret


def _stored(client: ApiClient) -> CallbackSecret:
    """The client's secret row, created on first need. Two requests creating it at once end
    with one row: the loser of the unique constraint reads the winner's."""
    row = CallbackSecret.objects.filter(client=client).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return CallbackSecret.objects.create(client=client, secret_encrypted=vault.encrypt(_new_secret()))
    except IntegrityError:
        return CallbackSecret.objects.get(client=client)


def _view(row: CallbackSecret) -> SecretView:
    return SecretView(
        secret=vault.decrypt(row.secret_encrypted),
        created_at=row.created_at,
        rotated_at=row.rotated_at,
        previous_valid_until=row.previous_valid_until if row.previous_secret_encrypted else None,
    )


def callback_secret_get(*, client: ApiClient) -> SecretView:
    return _view(_stored(client))


def callback_secret_rotate(*, client: ApiClient) -> SecretView:
    """A new secret for the client. The old one still signs for ROTATION_OVERLAP."""
    _stored(client)
    now = timezone.now()
    with transaction.atomic():
        # Locked, so two rotations at once do not both keep the same "previous" secret.
        row = CallbackSecret.objects.select_for_update().get(client=client)
        row.previous_secret_encrypted = row.secret_encrypted
        row.previous_valid_until = now + ROTATION_OVERLAP
        row.secret_encrypted = vault.encrypt(_new_secret())
        row.rotated_at = now
        row.save()
    return _view(row)


def signing_secrets(*, client: ApiClient, now: datetime | None = None) -> list[str]:
    """The secrets a callback of this client is signed with now: the current one, and the
    previous one while its overlap lasts."""
    now = now or timezone.now()
    row = _stored(client)
    keys = [vault.decrypt(row.secret_encrypted)]
    if row.previous_secret_encrypted and row.previous_valid_until and row.previous_valid_until > now:
        keys.append(vault.decrypt(row.previous_secret_encrypted))
    return keys


def standard_signature(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signature_headers(
    *, keys: list[str], msg_id: str, timestamp: int, body: bytes, callback_secret: str = ""
) -> dict[str, str]:
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            standard_signature(key, msg_id=msg_id, timestamp=timestamp, body=body) for key in keys
        ),
    }
    if callback_secret:
        # The original's header: hex HMAC-SHA256 of the exact body bytes, no prefix.
        headers["X-Signature"] = hmac.new(callback_secret.encode(), body, hashlib.sha256).hexdigest()
    return headers
