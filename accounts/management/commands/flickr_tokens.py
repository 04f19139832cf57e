"""manage.py flickr_tokens [--json] [--client NAME] — the linked accounts, never their secrets."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.management.commands._shared import client_named
from accounts.models import FlickrAccount
from accounts.selectors import accounts_listing

COLUMNS = ("user_id", "nsid", "username", "perms", "status", "client", "created", "last_used")


def _row(account: FlickrAccount) -> dict[str, Any]:
    return {
        "user_id": str(account.user_id),
        "nsid": account.nsid,
        "username": account.username,
        "perms": account.perms,
        "status": account.status,
        "client": account.client.name,
        "created": account.created_at.isoformat(timespec="seconds"),
        "last_used": account.last_used_at.isoformat(timespec="seconds") if account.last_used_at else None,
        "duplicate_of": str(account.duplicate_of.user_id) if account.duplicate_of else None,
    }


class Command(BaseCommand):
    help = (
        "List linked Flickr accounts: user_id, NSID, username, permission, status, client, created, "
        "last used. Never a token or secret."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="One JSON array, for scripts.")
        parser.add_argument("--client", help="Only this client's accounts.")

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = accounts_listing().select_related("duplicate_of")
        if options["client"]:
            accounts = accounts.filter(client=client_named(options["client"]))
        rows = [_row(a) for a in accounts]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No linked accounts.")
            return
        table = [[str(r[c] or "-") for c in COLUMNS] for r in rows]
        widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(COLUMNS)]
        self.stdout.write("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip())
        for cells in table:
            self.stdout.write("  ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)).rstrip())
        self.stdout.write(f"{len(rows)} account(s).")
