"""manage.py rotate_encryption_keys — re-encrypt every stored secret with the newest key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import vault
from accounts.models import FlickrAccount, FlickrApp
from jobs.models import Job

# (model, encrypted fields) of everything the vault protects.
_ENCRYPTED = [
    (FlickrApp, ["api_secret_encrypted"]),
    (FlickrAccount, ["oauth_token_encrypted", "oauth_token_secret_encrypted"]),
    (Job, ["callback_secret_encrypted"]),
]


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored token and secret with the first key of FLICKRHUB_ENCRYPTION_KEYS. "
        "Rotate by putting a new key first, running this, then removing the old key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        try:
            with transaction.atomic():
                for model, fields in _ENCRYPTED:
                    for row in model._default_manager.select_for_update().only("pk", *fields).iterator():
                        for name in fields:
                            setattr(row, name, vault.rotate(getattr(row, name)))
                        row.save(update_fields=fields)
                        total += 1
        except vault.VaultError as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
        self.stdout.write(f"Re-encrypted the secrets of {total} rows with the newest key.")
