"""manage.py create_api_client NAME — creates an API client and prints its key, once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import ApiClient
from accounts.services import api_client_create


class Command(BaseCommand):
    help = "Create an API client and print its API key (shown only this once; only a hash is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="A name for the client, e.g. the integrating program's.")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("The name must be 1 to 100 characters.")
        if ApiClient.objects.filter(name=name).exists():
            raise CommandError(f"A client named {name!r} exists already; choose another name.")
        client, key = api_client_create(name=name)
        self.stdout.write(f"Created API client {client.name!r}.")
        self.stdout.write("Its API key (shown once; store it now):")
        self.stdout.write(key)
        self.stdout.write("Send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.")
