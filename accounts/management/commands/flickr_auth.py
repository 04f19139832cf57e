"""manage.py flickr_auth — link a Flickr account from a shell (the out-of-band flow).

Prints Flickr's authorize URL, reads the code Flickr shows (`123-456-789`), stores the account
and prints its user_id, then checks it with flickr.test.login. The token is never printed: the
original's CLI printed it, and nobody needs it outside the hub.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import flickr_oauth, pending
from accounts.management.commands._shared import client_named
from accounts.models import FlickrAccount
from accounts.problems import LinkError, Problem
from accounts.services import account_check_token, authorization_complete, authorization_start

SHELL_CHANNEL = "shell"
_PROMPT_TRIES = 3


class Command(BaseCommand):
    help = (
        "Link a Flickr account out-of-band: open the printed URL, approve, and enter the code "
        "Flickr shows. Prints the new user_id; never prints the token."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--client", help="The API client to link it for (default: the only one).")
        parser.add_argument("--perms", choices=flickr_oauth.PERMS, default="write", help="Default: write.")
        parser.add_argument("--user-id", help="The user_id to give a newly linked account (a UUID).")
        parser.add_argument("--verifier", help="The code Flickr showed, instead of the prompt.")
        parser.add_argument(
            "--oauth-token",
            help="Finish an attempt started earlier with --no-input (needs a shared cache: REDIS_URL).",
        )
        parser.add_argument(
            "--no-input",
            action="store_true",
            help="Print the URL and stop; finish with --oauth-token/--verifier.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        client = client_named(options["client"])
        user_id = self._user_id(options["user_id"])
        if options["oauth_token"]:
            attempt = pending.get(options["oauth_token"])
            if attempt is None or attempt.channel != SHELL_CHANNEL or attempt.client_id != str(client.pk):
                raise CommandError(
                    "That attempt is unknown or older than 10 minutes (with the embedded cache only "
                    "the process that started it knows it). Run flickr_auth again."
                )
        else:
            attempt = self._start(client, options["perms"], user_id)
            if options["no_input"]:
                self.stdout.write(
                    f"3) Then run: manage.py flickr_auth --client {client.name!r} "
                    f"--oauth-token {attempt.oauth_token} --verifier <code>   (within 10 minutes)"
                )
                if "locmem" in settings.CACHES["default"]["BACKEND"].lower():
                    self.stdout.write("   Note: without REDIS_URL only this process remembers the attempt.")
                return
        account = self._complete(attempt, options["verifier"])
        self.stdout.write(f'Saved under user_id="{account.user_id}" (use this in API requests).')
        self.stdout.write("Quick check via flickr.test.login ...")
        check = account_check_token(account=account)
        self.stdout.write(f"flickr.test.login: {'ok' if check.ok else 'FAILED'} — {check.message}")
        if not check.ok:
            raise CommandError("The account was stored, but Flickr did not accept its token.")

    def _user_id(self, raw: str | None) -> str | None:
        if not raw:
            return None
        try:
            value = str(uuid.UUID(raw.strip()))
        except ValueError:
            raise CommandError(f"--user-id must be a UUID (like {uuid.uuid4()}), not {raw!r}.") from None
        if FlickrAccount.objects.filter(user_id=value).exists():
            raise CommandError(
                f"user_id {value} belongs to an account already; choose another or leave it out."
            )
        return value

    def _start(self, client: Any, perms: str, user_id: str | None) -> pending.PendingAuthorization:
        self.stdout.write("Requesting a temporary token from Flickr...")
        try:
            attempt = authorization_start(
                client=client, perms=perms, callback=flickr_oauth.OOB, channel=SHELL_CHANNEL, user_id=user_id
            )
        except LinkError as error:
            raise CommandError(
                f"{error.wording.title}. {error.wording.happened} {error.wording.to_do}"
            ) from None
        self.stdout.write("1) Open this URL in your browser and authorize the app:")
        self.stdout.write(flickr_oauth.authorize_url(attempt.oauth_token, attempt.perms))
        self.stdout.write("2) After authorizing, Flickr shows a code (oauth_verifier), like 123-456-789.")
        return attempt

    def _complete(self, attempt: pending.PendingAuthorization, given: str | None) -> FlickrAccount:
        tries = 1 if given else _PROMPT_TRIES
        for _ in range(tries):
            raw = given if given else self._ask()
            verifier = flickr_oauth.normalise_verifier(raw)
            if verifier is None:
                self.stderr.write("That is not a Flickr code: it has 9 digits, like 123-456-789.")
                continue
            try:
                account, created = authorization_complete(attempt=attempt, verifier=verifier)
            except LinkError as error:
                if error.problem is Problem.VERIFIER_REJECTED and not given:
                    self.stderr.write(error.wording.happened)
                    continue
                raise CommandError(
                    f"{error.wording.title}. {error.wording.happened} {error.wording.to_do}"
                ) from None
            if not created:
                self.stdout.write(
                    "This Flickr account was linked before for this client: it keeps its user_id."
                )
            self.stdout.write(
                f"Linked {account.username or account.nsid} ({account.nsid}) with {account.perms} permission."
            )
            return account
        raise CommandError("No valid code was entered; nothing was linked.")

    def _ask(self) -> str:
        try:
            return input("Enter the verifier code: ")
        except EOFError:
            return ""
