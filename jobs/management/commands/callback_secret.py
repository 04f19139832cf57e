"""manage.py callback_secret --client NAME [--rotate] — an API client's callback signing secret."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import ApiClient
from jobs.webhooks import ROTATION_OVERLAP, callback_secret_get, callback_secret_rotate


class Command(BaseCommand):
    help = (
        "Print the Standard Webhooks secret (whsec_…) that signs an API client's callbacks, "
        "creating it if the client has none; --rotate makes a new one (the previous one keeps "
        "signing beside it for a day, so receivers can switch)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--client", required=True, help="The API client's name.")
        parser.add_argument("--rotate", action="store_true", help="Replace the secret with a new one.")

    def handle(self, *args: Any, client: str, rotate: bool, **options: Any) -> None:
        api_client = ApiClient.objects.filter(name=client.strip()).first()
        if api_client is None:
            raise CommandError(f"No API client is named {client.strip()!r} (see the admin's API clients).")
        view = callback_secret_rotate(client=api_client) if rotate else callback_secret_get(client=api_client)
        if rotate:
            hours = int(ROTATION_OVERLAP.total_seconds() // 3600)
            self.stdout.write(
                f"Rotated the callback secret of {api_client.name!r}; the previous one also signs "
                f"for {hours} hours."
            )
        self.stdout.write(f"Callback signing secret of {api_client.name!r} (keep it private):")
        self.stdout.write(view.secret)
