"""Tokens at rest: encrypted, rotatable, never shown by repr."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet

from accounts import vault
from accounts.models import FlickrAccount
from accounts.services import account_link, api_client_create, flickr_app_get_or_create
from flickrhub import logconfig
from flickrhub.logconfig import redact_text

TOKEN = "72157626318069415-087bfc7b5816092c"
SECRET = "a202d1f853ec69de"


@pytest.fixture
def account(db):
    client, _ = api_client_create(name="vault-client")
    app = flickr_app_get_or_create(api_key="k" * 32, api_secret="consumer-secret-value")
    account, _ = account_link(
        client=client,
        app=app,
        nsid="21207597@N07",
        username="jamal",
        fullname="",
        perms="write",
        token=TOKEN,
        token_secret=SECRET,
    )
    return account


def test_the_stored_bytes_are_not_the_token(account):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT oauth_token_encrypted, oauth_token_secret_encrypted FROM accounts_flickraccount"
        )
        stored = " ".join(cursor.fetchone())
    assert TOKEN not in stored and SECRET not in stored
    creds = FlickrAccount.objects.get(pk=account.pk).credentials()
    assert (creds.token, creds.token_secret) == (TOKEN, SECRET)


def test_credentials_repr_hides_every_secret(account):
    text = repr(account.credentials())
    assert TOKEN not in text and SECRET not in text and "consumer-secret-value" not in text


def test_a_decrypted_secret_cannot_reach_a_log_line(account):
    account.credentials()
    assert TOKEN not in redact_text(f"GET https://x/?a=1 failed for {TOKEN}")


def test_a_secret_used_again_is_redacted_even_after_the_redactor_forgot_it(account, monkeypatch):
    account.credentials()  # decrypted once; the next use is remembered, not decrypted again
    # The redactor forgets everything once it holds too many secrets (thousands of accounts).
    monkeypatch.setattr(logconfig, "_known_secrets", set())
    monkeypatch.setattr(logconfig, "_few", ())
    monkeypatch.setattr(logconfig, "_by_start", {})
    assert TOKEN in redact_text(f"failed for {TOKEN}")  # what it would leak had it forgotten
    assert FlickrAccount.objects.get(pk=account.pk).credentials().token == TOKEN
    assert TOKEN not in redact_text(f"failed for {TOKEN}")


def test_rotation_re_encrypts_with_the_new_key_and_old_keys_still_read(account, settings):
    old_ciphertext = account.oauth_token_encrypted
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.ENCRYPTION_KEYS]
    rotated = vault.rotate(old_ciphertext)
    assert rotated != old_ciphertext
    settings.ENCRYPTION_KEYS = settings.ENCRYPTION_KEYS[:1]  # the old key is gone
    assert vault.decrypt(rotated) == TOKEN
    with pytest.raises(vault.VaultError):
        vault.decrypt(old_ciphertext)


def test_linking_the_same_flickr_account_again_keeps_the_user_id(account):
    again, created = account_link(
        client=account.client,
        app=account.app,
        nsid=account.nsid,
        username="jamal2",
        fullname="J",
        perms="delete",
        token="new-token-123456",
        token_secret="new-secret-123456",
    )
    assert not created
    assert again.user_id == account.user_id
    assert again.credentials().token == "new-token-123456"
    assert FlickrAccount.objects.count() == 1


def test_the_rotate_command_leaves_every_secret_readable_with_only_the_new_key(account, settings):
    from django.core.management import call_command

    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.ENCRYPTION_KEYS]
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    settings.ENCRYPTION_KEYS = settings.ENCRYPTION_KEYS[:1]
    creds = FlickrAccount.objects.select_related("app").get(pk=account.pk).credentials()
    assert (creds.token, creds.token_secret, creds.consumer_secret) == (
        TOKEN,
        SECRET,
        "consumer-secret-value",
    )
