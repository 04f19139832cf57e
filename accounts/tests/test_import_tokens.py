"""manage.py import_tokens — the original service's token export, broken records included."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import AccountStatus, FlickrAccount
from accounts.services import api_client_create
from flickr.fake.testing import register_access_token

DATA = Path(__file__).parent / "data"
JSONL = DATA / "tokens.jsonl"
UID = "0b6f2f4e-8c1a-4d3e-9f57-2a1b3c4d5e{}"
GOOD = {
    "01": "46068127@N05",
    "02": "26940109@N02",
    "03": "46068127@N05",
    "08": "142992343@N08",
    "0c": "136767366@N07",
}


@pytest.fixture
def legacy(world):
    client, _ = api_client_create(name="legacy")
    return client


def run(*args: str) -> tuple[str, str, CommandError | None]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_tokens", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def test_the_sample_export_imports_its_good_records_and_names_every_bad_line(legacy):
    out, err, failed = run(str(JSONL), "--client", "legacy")

    assert {str(a.user_id) for a in FlickrAccount.objects.filter(client=legacy)} == {
        UID.format(k) for k in GOOD
    }
    assert "Imported 5 record(s) (4 created, 1 duplicate); 7 bad record(s) skipped." in out
    lines = err.strip().splitlines()
    assert lines == [
        lines[0],
        "line 5: user_id 'alice' is not a UUID; FlickrHub's user_ids are UUIDs (the original minted UUIDs unless one was typed into its CLI)",
        "line 6: token.oauth_token_secret is missing",
        "line 7: token.user_nsid 'not-an-nsid' is not a Flickr NSID (like 12345678@N01)",
        f"line 9: user_id {UID.format('01')} was already given on line 1",
        "line 10: token.api_key is given without token.api_secret, so its calls could not be signed",
        "line 11: createdAt is not a date: 'yesterday'",
    ]
    assert lines[0].startswith("line 4: not valid JSON")
    assert failed is not None and "7 record(s) were not imported" in str(failed)


def test_user_ids_tokens_and_dates_are_kept(legacy):
    run(str(JSONL), "--client", "legacy")
    account = FlickrAccount.objects.get(user_id=UID.format("02"))
    creds = account.credentials()
    assert (account.nsid, account.username, account.perms) == ("26940109@N02", "mbeckett", "write")
    assert (creds.token, creds.token_secret) == ("72157700000000002-a1b2c3d4e5f60002", "5ec0000000000002")
    assert account.created_at.isoformat() == "2024-03-01T10:46:40+00:00"  # {"$numberLong": "1709290000000"}
    assert account.app.is_server_app


def test_an_older_link_of_the_same_flickr_account_stays_usable_beside_the_newest(legacy):
    run(str(JSONL), "--client", "legacy")
    newest = FlickrAccount.objects.get(user_id=UID.format("01"))
    older = FlickrAccount.objects.get(user_id=UID.format("03"))
    assert newest.duplicate_of is None
    assert older.duplicate_of == newest
    assert older.credentials().token == "72157700000000003-a1b2c3d4e5f60003"


def test_running_it_again_changes_nothing(legacy):
    run(str(JSONL), "--client", "legacy")
    before = list(FlickrAccount.objects.order_by("pk").values_list("pk", "user_id", "oauth_token_encrypted"))
    out, _, _ = run(str(JSONL), "--client", "legacy")
    assert "Imported 5 record(s) (5 unchanged)" in out
    after = list(FlickrAccount.objects.order_by("pk").values_list("pk", "user_id", "oauth_token_encrypted"))
    assert before == after


def test_a_dry_run_reports_the_same_and_writes_nothing(legacy):
    out, err, failed = run(str(JSONL), "--client", "legacy", "--dry-run")
    assert "Dry run, nothing written: would import 5 record(s) (4 created, 1 duplicate); 7 bad" in out
    assert "line 6: token.oauth_token_secret is missing" in err
    assert failed is not None
    assert not FlickrAccount.objects.filter(client=legacy).exists()


def test_verify_marks_the_tokens_flickr_rejects(legacy, sandbox):
    for key, nsid in GOOD.items():
        line = next(
            json.loads(raw)
            for raw in JSONL.read_text().splitlines()
            if UID.format(key) in raw and "alice" not in raw
        )
        register_access_token(
            sandbox.app,
            token=line["token"]["oauth_token"],
            secret=line["token"]["oauth_token_secret"],
            nsid=nsid,
        )
    sandbox.app.state.revoke_token("72157700000000008-a1b2c3d4e5f60008")  # the person removed the app

    out, err, _ = run(str(JSONL), "--client", "legacy", "--verify")

    assert "Verified with flickr.test.login: 4 work, 1 rejected (marked needs re-link)" in out
    dead = FlickrAccount.objects.get(user_id=UID.format("08"))
    assert dead.status == AccountStatus.NEEDS_RELINK
    assert f"user_id {UID.format('08')}: rejected by Flickr" in err
    assert FlickrAccount.objects.filter(client=legacy, status=AccountStatus.ACTIVE).count() == 4


def test_a_user_id_already_used_for_another_account_is_a_conflict_not_an_overwrite(legacy, world):
    taken = world.alpha.accounts[1]
    source = io.StringIO()
    source.write(JSONL.read_text().splitlines()[1].replace(UID.format("02"), str(taken.user_id)))
    path = Path(connection.settings_dict["NAME"]).parent / "conflict.jsonl"
    path.write_text(source.getvalue())
    try:
        _, err, failed = run(str(path), "--client", "legacy")
    finally:
        path.unlink()
    assert (
        f"line 1: user_id {taken.user_id} is already in the hub for another Flickr account or client" in err
    )
    assert failed is not None
    assert FlickrAccount.objects.get(pk=taken.pk).client == world.alpha.model


def test_importing_for_a_client_that_already_linked_the_account_keeps_both_user_ids(world):
    # alpha linked aurora_lens through the hub; the original's tokens for her arrive later.
    run(str(JSONL), "--client", "alpha")
    hub_link = world.alpha.accounts[0]
    imported = FlickrAccount.objects.get(user_id=UID.format("01"))
    assert imported.duplicate_of == hub_link
    assert FlickrAccount.objects.get(pk=hub_link.pk).duplicate_of is None


def test_a_json_array_export_and_plain_json_are_read_with_line_numbers(legacy):
    out, err, _ = run(str(DATA / "tokens.json"), "--client", "legacy")
    assert "Imported 2 record(s) (2 created); 1 bad record(s) skipped." in out
    assert err.strip() == "line 14: token is not an object"
    assert FlickrAccount.objects.get(user_id="7d0c3a52-1111-4b6e-8a0e-5f9d3c2b1a03").username == "mbeckett"


def test_a_csv_export_is_read_too(legacy):
    out, err, _ = run(str(DATA / "tokens.csv"), "--client", "legacy")
    assert "Imported 2 record(s) (2 created); 1 bad record(s) skipped." in out
    assert err.strip() == "line 3: token.oauth_token_secret is missing"


def test_a_file_that_cannot_be_read_is_one_clear_error(legacy, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_tokens", str(tmp_path / "missing.jsonl"), "--client", "legacy")


def test_nothing_secret_is_printed(legacy):
    out, err, _ = run(str(JSONL), "--client", "legacy")
    # every token in the sample has one of these fragments, every secret the other
    for fragment in ("a1b2c3d4e5f600", "5ec00000000000"):
        assert fragment not in out + err


# --- straight from the original's MongoDB (nx-27017 speaks MongoDB's wire protocol) ----------


@pytest.fixture
def mongo_url(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nx_27017.nx_27017",
            "--db",
            "memory",
            "-p",
            str(port),
            "--log-file",
            str(tmp_path / "nx.log"),
            "--pid-file",
            str(tmp_path / "nx.pid"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("the nx-27017 MongoDB server did not start")
            time.sleep(0.05)
    yield f"mongodb://127.0.0.1:{port}/"
    server.terminate()
    try:
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.kill()


def test_tokens_are_read_straight_from_the_originals_mongodb(legacy, mongo_url):
    import pymongo
    from bson import json_util

    documents = []
    for raw in JSONL.read_text().splitlines():
        try:
            documents.append(json_util.loads(raw))
        except ValueError:
            continue  # the truncated line and the "yesterday" date cannot be in a database
    with pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000) as mongo:
        mongo["flickrhub"]["tokens"].insert_many(documents)

    out, err, failed = run("--mongo-url", mongo_url, "--client", "legacy")

    assert "Imported 5 record(s) (4 created, 1 duplicate); 5 bad record(s) skipped." in out
    assert "document 4 (_id 65e1a0f2c3b4a59d8e7f6a05): user_id 'alice' is not a UUID" in err
    assert (
        FlickrAccount.objects.get(user_id=UID.format("01")).created_at.isoformat()
        == "2024-03-01T10:00:00+00:00"
    )
    assert failed is not None


def test_an_unreachable_mongodb_is_one_clear_error_without_the_password(legacy):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CommandError) as raised:
        call_command(
            "import_tokens",
            "--mongo-url",
            f"mongodb://hub:hunter2secret@127.0.0.1:{port}/",
            "--mongo-timeout",
            "0.3",
            "--client",
            "legacy",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    assert "Cannot read from MongoDB" in str(raised.value)
    assert "hunter2secret" not in str(raised.value)
