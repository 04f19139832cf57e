"""Importing tokens from the original service (its MongoDB `tokens` collection, §4.1).

Sources: a `mongoexport` of the collection (JSON lines, or a JSON array with --jsonArray), in
MongoDB Extended JSON (`{"$date": …}`, `{"$oid": …}`); plain JSON of the same documents; CSV
(`user_id, oauth_token, oauth_token_secret, user_nsid, username, api_key, api_secret,
createdAt, updatedAt`, with or without mongoexport's `token.` prefixes); or the database itself
through pymongo.

Each record is validated first and imported in its own transaction: a bad record is reported
with its line and skipped, and no record is ever half-written. Re-running with the same input
changes nothing (records are matched by user_id), so the way to finish after fixing bad lines
is to run again.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts import vault
from accounts.models import AccountStatus, ApiClient, FlickrAccount, FlickrApp
from accounts.services import flickr_app_get_or_create, flickr_server_app

NSID_RE = re.compile(r"^\d{1,20}@N\d{2}$")


class BadRecord(ValueError):
    """One record that cannot be imported, and why (in words an operator can act on)."""


@dataclass
class TokenRecord:
    where: str  # "line 7", "document 3 (_id 65a…)"
    user_id: uuid.UUID
    nsid: str
    username: str
    token: str = field(repr=False)
    token_secret: str = field(repr=False)
    api_key: str = ""
    api_secret: str = field(default="", repr=False)
    created_at: datetime | None = None
    updated_at: datetime | None = None


# --- Reading ------------------------------------------------------------------------------------


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def read_text(text: str, fmt: str) -> Iterator[tuple[str, dict[str, Any] | BadRecord]]:
    """(where, document or the reason it cannot be read) for each record of an export."""
    if fmt == "auto":
        fmt = "csv" if _looks_like_csv(text) else ("array" if text.lstrip().startswith("[") else "jsonl")
    if fmt == "csv":
        yield from _read_csv(text)
    elif fmt == "array":
        yield from _read_array(text)
    else:
        yield from _read_json_lines(text)


def _looks_like_csv(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0]
    return not first.startswith(("{", "[")) and "user_id" in first and "," in first


def _read_json_lines(text: str) -> Iterator[tuple[str, dict[str, Any] | BadRecord]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            document = json.loads(line)
        except json.JSONDecodeError as exc:
            yield where, BadRecord(f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        yield where, document if isinstance(document, dict) else BadRecord("not a JSON object")


def _read_array(text: str) -> Iterator[tuple[str, dict[str, Any] | BadRecord]]:
    """A JSON array read element by element, so each element knows its line and one broken
    element does not hide the others."""
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    whitespace = re.compile(r"[\s,]*")
    while True:
        position = whitespace.match(text, position).end()  # type: ignore[union-attr]
        if position >= len(text) or text[position] == "]":
            return
        where = f"line {_line_of(text, position)}"
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            yield where, BadRecord(f"not valid JSON ({exc.msg}); the rest of the array could not be read")
            return
        yield where, document if isinstance(document, dict) else BadRecord("not a JSON object")


_CSV_TOKEN_FIELDS = ("oauth_token", "oauth_token_secret", "user_nsid", "username", "api_key", "api_secret")


def _read_csv(text: str) -> Iterator[tuple[str, dict[str, Any] | BadRecord]]:
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        where = f"line {reader.line_num}"
        flat = {(k or "").strip().removeprefix("token."): (v or "").strip() for k, v in row.items()}
        if None in row:
            yield where, BadRecord("more values than the header has columns")
            continue
        document: dict[str, Any] = {k: v for k, v in flat.items() if k not in _CSV_TOKEN_FIELDS and v}
        document["token"] = {k: flat[k] for k in _CSV_TOKEN_FIELDS if flat.get(k)}
        yield where, document


def read_mongo(
    url: str, *, database: str, collection: str, timeout: float = 5.0
) -> Iterator[tuple[str, dict[str, Any] | BadRecord]]:
    import pymongo

    client: pymongo.MongoClient = pymongo.MongoClient(url, serverSelectionTimeoutMS=int(timeout * 1000))
    try:
        cursor = client[database][collection].find({})
        for number, document in enumerate(cursor, start=1):
            yield f"document {number} (_id {document.get('_id', '?')})", dict(document)
    finally:
        client.close()


# --- Validating ------------------------------------------------------------------------------


def _date(value: Any, name: str) -> datetime | None:
    """A date as mongoexport writes it ({"$date": ISO or millis or {"$numberLong"}}), as pymongo
    returns it, or as plain ISO text."""
    if value in (None, ""):
        return None
    if isinstance(value, dict) and "$date" in value:
        value = value["$date"]
        if isinstance(value, dict):
            value = value.get("$numberLong")
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, int | float) or (isinstance(value, str) and value.lstrip("-").isdigit()):
            moment = datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            raise TypeError
    except (TypeError, ValueError, OverflowError, OSError):
        raise BadRecord(f"{name} is not a date: {str(value)[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def validate(where: str, document: dict[str, Any]) -> TokenRecord:
    """The record in a document of the original's shape (nested `token`) or a flat one."""
    token = document.get("token")
    if token is None:
        token = document  # plain JSON: the token's fields beside user_id
    if not isinstance(token, dict):
        raise BadRecord("token is not an object")
    raw_user_id = document.get("user_id")
    if raw_user_id in (None, ""):
        raise BadRecord("user_id is missing")
    try:
        user_id = uuid.UUID(str(raw_user_id).strip())
    except ValueError:
        raise BadRecord(
            f"user_id {str(raw_user_id)[:60]!r} is not a UUID; FlickrHub's user_ids are UUIDs "
            "(the original minted UUIDs unless one was typed into its CLI)"
        ) from None
    problems = [
        f"token.{name} is missing"
        for name in ("oauth_token", "oauth_token_secret", "user_nsid")
        if not _text(token.get(name))
    ]
    if problems:
        raise BadRecord("; ".join(problems))
    nsid = _text(token["user_nsid"])
    if not NSID_RE.match(nsid):
        raise BadRecord(f"token.user_nsid {nsid[:40]!r} is not a Flickr NSID (like 12345678@N01)")
    api_key, api_secret = _text(token.get("api_key")), _text(token.get("api_secret"))
    if api_key and not api_secret and api_key != settings.FLICKR_API_KEY:
        raise BadRecord("token.api_key is given without token.api_secret, so its calls could not be signed")
    return TokenRecord(
        where=where,
        user_id=user_id,
        nsid=nsid,
        username=_text(token.get("username"))[:200],
        token=_text(token["oauth_token"]),
        token_secret=_text(token["oauth_token_secret"]),
        api_key=api_key,
        api_secret=api_secret,
        created_at=_date(document.get("createdAt"), "createdAt"),
        updated_at=_date(document.get("updatedAt"), "updatedAt"),
    )


def in_import_order(records: Iterable[TokenRecord]) -> list[TokenRecord]:
    """Newest first within the same Flickr account, so the newest of several links of one
    account becomes the account's main link and the older ones its duplicates."""
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(records, key=lambda r: r.updated_at or r.created_at or oldest, reverse=True)


# --- Writing ----------------------------------------------------------------------------------


def _app(record: TokenRecord) -> FlickrApp:
    if not record.api_key or record.api_key == settings.FLICKR_API_KEY:
        return flickr_server_app()
    return flickr_app_get_or_create(api_key=record.api_key, api_secret=record.api_secret)


def _same_token(account: FlickrAccount, record: TokenRecord) -> bool:
    try:
        return (
            vault.decrypt(account.oauth_token_encrypted) == record.token
            and vault.decrypt(account.oauth_token_secret_encrypted) == record.token_secret
        )
    except vault.VaultError:
        return False


def import_record(*, record: TokenRecord, client: ApiClient, perms: str) -> tuple[str, FlickrAccount]:
    """Writes one record in its own transaction; returns what happened ("created",
    "duplicate", "updated", "unchanged") and the account. Raises BadRecord for a conflict."""
    with transaction.atomic():
        app = _app(record)
        account = FlickrAccount.objects.select_for_update().filter(user_id=record.user_id).first()
        if account is not None:
            if (account.client_id, account.app_id, account.nsid) != (client.pk, app.pk, record.nsid):
                raise BadRecord(
                    f"user_id {record.user_id} is already in the hub for another Flickr account or client "
                    f"({account.nsid}, client {account.client.name}); it was left as it is"
                )
            if _same_token(account, record):
                return "unchanged", account
            account.set_token(record.token, record.token_secret)
            account.username = record.username or account.username
            account.status, account.status_reason = AccountStatus.ACTIVE, ""
            account.save()
            return "updated", account
        main = (
            FlickrAccount.objects.select_for_update()
            .filter(client=client, app=app, nsid=record.nsid, duplicate_of__isnull=True)
            .first()
        )
        account = FlickrAccount(
            user_id=record.user_id,
            client=client,
            app=app,
            nsid=record.nsid,
            username=record.username,
            perms=perms,
            duplicate_of=main,
        )
        account.set_token(record.token, record.token_secret)
        account.save()
        if record.created_at is not None:
            FlickrAccount.objects.filter(pk=account.pk).update(created_at=record.created_at)
        return ("duplicate" if main is not None else "created"), account


def check_would_import(*, record: TokenRecord, client: ApiClient, seen: set[tuple[str, str]]) -> str:
    """What import_record would do, without writing (for --dry-run). `seen` collects the
    Flickr accounts this run would already have created."""
    account = FlickrAccount.objects.filter(user_id=record.user_id).select_related("client").first()
    if account is None:
        api_key = record.api_key or settings.FLICKR_API_KEY
        main = (api_key, record.nsid) in seen or FlickrAccount.objects.filter(
            client=client, app__api_key=api_key, nsid=record.nsid, duplicate_of__isnull=True
        ).exists()
        seen.add((api_key, record.nsid))
        return "duplicate" if main else "created"
    if account.client_id != client.pk or account.nsid != record.nsid:
        raise BadRecord(
            f"user_id {record.user_id} is already in the hub for another Flickr account or client "
            f"({account.nsid}, client {account.client.name}); it was left as it is"
        )
    return "unchanged" if _same_token(account, record) else "updated"
