"""manage.py import_tokens FILE | --mongo-url URL — tokens from the original service.

Every record is checked before anything is written, then each good record is imported in its
own transaction (see accounts/importer.py). Bad records are listed one line each with where
they are and what is wrong; the command then exits non-zero, and running it again after fixing
them imports just those (the others are already "unchanged").
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.importer import (
    BadRecord,
    TokenRecord,
    check_would_import,
    import_record,
    in_import_order,
    read_mongo,
    read_text,
    validate,
)
from accounts.management.commands._shared import client_named
from accounts.models import ApiClient, OAuthCredentials
from accounts.services import account_check_token

FORMATS = ("auto", "jsonl", "array", "csv")


class Command(BaseCommand):
    help = (
        "Import Flickr tokens from the original service: a mongoexport of its tokens collection "
        "(JSON lines or --jsonArray, Extended JSON), plain JSON, CSV, or its MongoDB (--mongo-url). "
        "user_ids are kept. Each record is imported on its own; bad ones are listed and skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="The export file ('-' for standard input).")
        parser.add_argument("--mongo-url", help="Read the tokens collection straight from MongoDB.")
        parser.add_argument(
            "--mongo-db", default="flickrhub", help="Database name (the original's MONGO_DB)."
        )
        parser.add_argument(
            "--collection", default="tokens", help="Collection (the original's TOKEN_COLLECTION)."
        )
        parser.add_argument(
            "--mongo-timeout", type=float, default=5.0, help="Seconds to wait for MongoDB (default 5)."
        )
        parser.add_argument("--format", choices=FORMATS, default="auto", help="Default: from the content.")
        parser.add_argument("--client", help="The API client that will own the accounts.")
        parser.add_argument(
            "--perms",
            choices=("read", "write", "delete"),
            default="write",
            help="The permission to record (the original did not store it; it always asked for write).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Check and report; write nothing.")
        parser.add_argument(
            "--verify",
            action="store_true",
            help="Call flickr.test.login with each token; dead ones are marked needs re-link.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if bool(options["file"]) == bool(options["mongo_url"]):
            raise CommandError("Give either an export FILE or --mongo-url, not both and not neither.")
        client = client_named(options["client"])
        documents = self._documents(options)
        records, bad = self._validated(documents)
        dry_run = options["dry_run"]
        outcomes: Counter[str] = Counter()
        verified: Counter[str] = Counter()
        seen: set[tuple[str, str]] = set()
        for record in in_import_order(records):
            try:
                if dry_run:
                    outcome = check_would_import(record=record, client=client, seen=seen)
                else:
                    outcome, account = import_record(record=record, client=client, perms=options["perms"])
            except BadRecord as conflict:
                bad.append((record.where, str(conflict)))
                continue
            except ValueError as exc:  # no Flickr app configured for records without api_key
                raise CommandError(str(exc)) from None
            outcomes[outcome] += 1
            if options["verify"]:
                verified[self._verify(record, client, None if dry_run else account)] += 1
        for where, problem in sorted(bad, key=lambda item: _order(item[0])):
            self.stderr.write(f"{where}: {problem}")
        self._summary(outcomes, verified, bad, dry_run=dry_run)
        if bad:
            raise CommandError(
                f"{len(bad)} record(s) were not imported (listed above). Fix them and run the command "
                "again: records already imported are left unchanged."
            )

    def _documents(self, options: dict[str, Any]) -> Any:
        if options["mongo_url"]:
            return _safely(
                read_mongo(
                    options["mongo_url"],
                    database=options["mongo_db"],
                    collection=options["collection"],
                    timeout=options["mongo_timeout"],
                )
            )
        name = options["file"]
        try:
            text = self.stdin_text() if name == "-" else Path(name).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {name}: {exc}") from None
        fmt = options["format"]
        if fmt == "auto" and name.lower().endswith(".csv"):
            fmt = "csv"
        return read_text(text, fmt)

    def stdin_text(self) -> str:
        import sys

        return sys.stdin.read()

    def _validated(self, documents: Any) -> tuple[list[TokenRecord], list[tuple[str, str]]]:
        records: list[TokenRecord] = []
        bad: list[tuple[str, str]] = []
        first_seen: dict[Any, str] = {}
        for where, document in documents:
            if isinstance(document, BadRecord):
                bad.append((where, str(document)))
                continue
            try:
                record = validate(where, document)
            except BadRecord as problem:
                bad.append((where, str(problem)))
                continue
            if record.user_id in first_seen:
                bad.append(
                    (where, f"user_id {record.user_id} was already given on {first_seen[record.user_id]}")
                )
                continue
            first_seen[record.user_id] = where
            records.append(record)
        return records, bad

    def _verify(self, record: TokenRecord, client: ApiClient, account: Any) -> str:
        from flickr import client as flickr_client
        from flickr.errors import ErrorClass, FlickrError

        if account is not None:
            check = account_check_token(account=account)
            if not check.ok:
                self.stderr.write(f"{record.where}: user_id {record.user_id}: {check.message}")
            return "work" if check.ok else "dead"
        creds = OAuthCredentials(
            consumer_key=record.api_key or settings.FLICKR_API_KEY,
            consumer_secret=record.api_secret or settings.FLICKR_API_SECRET,
            token=record.token,
            token_secret=record.token_secret,
        )
        try:
            flickr_client.call_rest(creds, "flickr.test.login", {})
        except FlickrError as error:
            state = "dead" if error.error_class is ErrorClass.RELINK else "unchecked"
            self.stderr.write(f"{record.where}: user_id {record.user_id}: {error.message}")
            return state
        return "work"

    def _summary(
        self, outcomes: Counter[str], verified: Counter[str], bad: list[tuple[str, str]], *, dry_run: bool
    ) -> None:
        total = sum(outcomes.values())
        parts = [
            f"{outcomes[k]} {k}" for k in ("created", "duplicate", "updated", "unchanged") if outcomes[k]
        ]
        line = (
            f"{'Dry run, nothing written: would import' if dry_run else 'Imported'} {total} record(s)"
            f"{' (' + ', '.join(parts) + ')' if parts else ''}; {len(bad)} bad record(s) skipped."
        )
        if verified:
            line += (
                f" Verified with flickr.test.login: {verified['work']} work, {verified['dead']} rejected"
                f"{' (marked needs re-link)' if not dry_run and verified['dead'] else ''}"
                + (f", {verified['unchecked']} not checked" if verified["unchecked"] else "")
                + "."
            )
        self.stdout.write(line)


def _order(where: str) -> tuple[int, str]:
    digits = "".join(c for c in where.split("(")[0] if c.isdigit())
    return (int(digits) if digits else 0, where)


def _safely(documents: Any) -> Any:
    """Mongo's connection errors as a CommandError, not a traceback."""
    import pymongo.errors

    try:
        yield from documents
    except pymongo.errors.PyMongoError as exc:
        # A URL's password must not reach the terminal (or a CI log) through the error text.
        detail = re.sub(r"//[^@/\s]+@", "//***@", str(exc))[:200]
        raise CommandError(f"Cannot read from MongoDB ({type(exc).__name__}): {detail}") from None
