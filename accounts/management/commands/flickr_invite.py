"""manage.py flickr_invite --client NAME [--expires-hours N] — a one-time linking link."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.management.commands._shared import client_named
from accounts.services import invitation_create, invitation_url


class Command(BaseCommand):
    help = (
        "Create a one-time invitation: whoever opens the printed link can link one Flickr account "
        "for the client, without a hub login. Only a hash of it is kept; it is shown once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--client", required=True, help="The API client the account will be linked for.")
        parser.add_argument("--expires-hours", type=float, default=72.0, help="Default: 72.")
        parser.add_argument("--note", default="", help="Who it is for (shown to operators in the admin).")

    def handle(self, *args: Any, **options: Any) -> None:
        hours = options["expires_hours"]
        if not 0 < hours <= 24 * 90:
            raise CommandError("--expires-hours must be more than 0 and at most 2160 (90 days).")
        client = client_named(options["client"])
        invitation, token = invitation_create(client=client, expires_hours=hours, note=options["note"])
        self.stdout.write(
            f"Invitation for {client.name!r}, for one account, "
            f"valid until {invitation.expires_at:%Y-%m-%d %H:%M} UTC:"
        )
        self.stdout.write(invitation_url(token))
        if not settings.PUBLIC_BASE_URL:
            self.stdout.write("(Put the hub's address in front; set PUBLIC_BASE_URL to print whole links.)")
