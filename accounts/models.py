"""Who may do what: API clients and their keys, Flickr apps, linked Flickr accounts."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

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
    # Sharing a Flickr key's quota when demand exceeds it (jobs/dispatcher.py).
    quota_weight = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="This client's share of a Flickr key's quota relative to other clients when "
        "calls must wait for it: a client of weight 2 gets twice the calls of a client of weight 1.",
    )
    quota_max_percent = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="At most this percentage of each Flickr key's quota, even when other clients are "
        "idle. Empty: no cap.",
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
    quota_per_hour = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Calls per hour Flickr allows this key, shared fairly by every client whose accounts "
        "it issued. Empty: FLICKR_QUOTA_PER_HOUR.",
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
    duplicate_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="duplicates",
        help_text=(
            "An earlier link of the same Flickr account imported from the original service, "
            "which minted a new user_id at every authorisation. Kept so that integrators holding "
            "the older user_id keep working while its token does."
        ),
    )

    class Meta:
        verbose_name = "Flickr account"
        constraints = [
            # Linking the same Flickr account again for the same client through the same app
            # updates this row and keeps its user_id. Imported duplicates stand beside it.
            models.UniqueConstraint(
                fields=["client", "app", "nsid"],
                condition=models.Q(duplicate_of__isnull=True),
                name="one_link_per_client_app_nsid",
            )
        ]
        indexes = [models.Index(fields=["nsid"]), models.Index(fields=["username"])]

    def __str__(self) -> str:
        return f"{self.username or self.nsid} ({self.user_id})"

    def set_token(self, token: str, token_secret: str) -> None:
        self.oauth_token_encrypted = vault.encrypt(token)
        self.oauth_token_secret_encrypted = vault.encrypt(token_secret)

    def credentials(self) -> OAuthCredentials:
        """What signing a call needs. Asking for it is what "using" an account means, so it
        also refreshes `last_used_at` (at most once a minute: operators want a hint, and a
        write per Flickr call would be a write on the jobs' hot path)."""
        creds = OAuthCredentials(
            consumer_key=self.app.api_key,
            consumer_secret=self.app.secret(),
            token=vault.decrypt(self.oauth_token_encrypted),
            token_secret=vault.decrypt(self.oauth_token_secret_encrypted),
        )
        now = timezone.now()
        if self.pk and (self.last_used_at is None or now - self.last_used_at > LAST_USED_RESOLUTION):
            FlickrAccount.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now
        return creds


LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_invitation_token(token: str) -> str:
    # 192-bit random tokens: as with API keys, a fast hash is enough and only it is stored.
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def usable(self, now: datetime | None = None) -> InvitationQuerySet:
        return self.filter(used_at__isnull=True, expires_at__gt=now or timezone.now(), client__is_active=True)


class Invitation(models.Model):
    """A one-time link that lets someone without a hub login link their Flickr account for
    one API client. Only the hash of its token is stored; the link is shown once."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    note = models.CharField(max_length=200, blank=True, help_text="Who it is for (shown to operators only).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    account = models.ForeignKey(
        FlickrAccount,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The account linked through this invitation.",
    )

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation for {self.client.name}" + (f" ({self.note})" if self.note else "")

    @staticmethod
    def generate_token() -> str:
        return secrets.token_urlsafe(24)

    def set_token(self, token: str) -> None:
        self.token_hash = hash_invitation_token(token)

    @property
    def state(self) -> str:
        if self.used_at is not None:
            return "used"
        if self.expires_at <= timezone.now():
            return "expired"
        return "open"

    def mark_used(self, *, account: FlickrAccount) -> bool:
        """Spends the invitation on `account`; False if it was spent or expired meanwhile.
        One conditional UPDATE, so two browsers finishing with the same link at the same
        moment cannot both use it."""
        now = timezone.now()
        spent = Invitation.objects.filter(pk=self.pk, used_at__isnull=True, expires_at__gt=now).update(
            used_at=now, account=account
        )
        return spent == 1
