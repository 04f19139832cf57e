"""Secrets at rest: Fernet with several keys, so keys can rotate.

The newest key (first in FLICKRHUB_ENCRYPTION_KEYS) encrypts; every key decrypts. Everything a
Flickr account needs to sign a call (token, token secret, an app's consumer secret) is stored
only as `encrypt(...)` output. Decrypted values are registered with the log redactor, so they
cannot reach a log line even inside an exception message.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from flickrhub.logconfig import register_secret


class VaultError(Exception):
    """A stored secret could not be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FLICKRHUB_ENCRYPTION_KEYS is empty: no key to encrypt with.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FLICKRHUB_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes; make one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)."
        ) from exc


def _current() -> MultiFernet:
    return _fernet(tuple(settings.ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    if not ciphertext:
        return ""
    value = _decrypted(tuple(settings.ENCRYPTION_KEYS), ciphertext)
    register_secret(value)  # again on every use: the redactor forgets when it holds too many
    return value


@lru_cache(maxsize=4096)
def _decrypted(keys: tuple[str, ...], ciphertext: str) -> str:
    """A worker signs every call with the same few accounts' secrets: three decryptions (two
    HMAC checks and AES each) per job, remembered instead. Under the keys they were read with,
    so a key removed from FLICKRHUB_ENCRYPTION_KEYS no longer opens anything; a relinked
    account has new ciphertexts. A failure is not remembered."""
    try:
        return _fernet(keys).decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise VaultError(
            "A stored secret cannot be decrypted with FLICKRHUB_ENCRYPTION_KEYS "
            "(was a key removed before `rotate_encryption_keys` ran?)."
        ) from None


def rotate(ciphertext: str) -> str:
    """The same secret encrypted with the newest key."""
    if not ciphertext:
        return ciphertext
    try:
        return _current().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise VaultError("A stored secret cannot be decrypted with any configured key.") from None
