"""Who may do what: API clients and their keys, Flickr apps, linked Flickr accounts."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import models

from accounts import vault

API_KEY_PREFIX = "fh_"


def hash_api_key(key: str) -> str:
    # API keys are 192-bit random strings, so a fast hash is enough: there is nothing to
    # brute-force. Only the hash is stored; the key is shown once, at creation.
    return hashlib.sha256(key.encode()).hexdigest()


class ApiClient(models.Model):
    """A program that calls the hub's API, identified by its API key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    key_prefix = models.CharField(
        max_length=16, editable=False, help_text="The first characters of the key, to tell keys apart."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(default=True, help_text="A revoked client's key is refused.")
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="managed_api_clients",
        help_text="People who may link Flickr accounts for this client.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def generate_key() -> str:
        return f"{API_KEY_PREFIX}{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"

    def set_key(self, key: str) -> None:
        self.key_prefix = key[:11]
        self.key_hash = hash_api_key(key)

    # Authenticated-user protocol, so DRF treats a client as `request.user`.
    @property
    def is_authenticated(self) -> bool:
        return True


class FlickrApp(models.Model):
    """A Flickr API key (consumer key) and its secret. A token is valid only when signed with
    the app that issued it, so every linked account remembers its app."""

    name = models.CharField(max_length=100)
    api_key = models.CharField("Flickr API key", max_length=64, unique=True)
    api_secret_encrypted = models.TextField(editable=False)
    is_server_app = models.BooleanField(
        default=False, help_text="The app configured by FLICKR_API_KEY / FLICKR_API_SECRET."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "Flickr app"

    def __str__(self) -> str:
        return f"{self.name} ({self.api_key[:6]}…)"

    def set_secret(self, secret: str) -> None:
        self.api_secret_encrypted = vault.encrypt(secret)

    def secret(self) -> str:
        return vault.decrypt(self.api_secret_encrypted)


class Permission(models.TextChoices):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"


class AccountStatus(models.TextChoices):
    ACTIVE = "active"
    NEEDS_RELINK = "needs_relink", "needs re-link"
    REVOKED = "revoked"


@dataclass(frozen=True)
class OAuthCredentials:
    """What signing a call for an account needs. `repr` hides the secrets, so a traceback or a
    debugger printout never shows them."""

    consumer_key: str
    consumer_secret: str = field(repr=False)
    token: str = field(repr=False)
    token_secret: str = field(repr=False)


class FlickrAccount(models.Model):
    """A Flickr account linked to the hub for one API client. Integrators know it only by its
    opaque `user_id`; its token lives here encrypted and never leaves the hub."""

    user_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="accounts")
    app = models.ForeignKey(FlickrApp, on_delete=models.PROTECT, related_name="accounts")
    nsid = models.CharField("Flickr NSID", max_length=32)
    username = models.CharField(max_length=200, blank=True)
    fullname = models.CharField(max_length=200, blank=True)
    perms = models.CharField(max_length=10, choices=Permission.choices, default=Permission.READ)
    oauth_token_encrypted = models.TextField(editable=False)
    oauth_token_secret_encrypted = models.TextField(editable=False)
    status = models.CharField(
        max_length=20, choices=AccountStatus.choices, default=AccountStatus.ACTIVE, db_index=True
    )
    status_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Flickr account"
        constraints = [
            # Linking the same Flickr account again for the same client through the same app
            # updates this row and keeps its user_id.
            models.UniqueConstraint(fields=["client", "app", "nsid"], name="one_link_per_client_app_nsid")
        ]
        indexes = [models.Index(fields=["nsid"]), models.Index(fields=["username"])]

    def __str__(self) -> str:
        return f"{self.username or self.nsid} ({self.user_id})"

    def set_token(self, token: str, token_secret: str) -> None:
        self.oauth_token_encrypted = vault.encrypt(token)
        self.oauth_token_secret_encrypted = vault.encrypt(token_secret)

    def credentials(self) -> OAuthCredentials:
        return OAuthCredentials(
            consumer_key=self.app.api_key,
            consumer_secret=self.app.secret(),
            token=vault.decrypt(self.oauth_token_encrypted),
            token_secret=vault.decrypt(self.oauth_token_secret_encrypted),
        )
