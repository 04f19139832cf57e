"""Operator views of clients, apps and accounts. Secrets are never shown: only whether set."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from accounts import lookups
from accounts.models import ApiClient, FlickrAccount, FlickrApp, Invitation
from accounts.services import account_check_token, account_revoke, invitation_path, invitation_url


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "key_prefix",
        "is_active",
        "quota_weight",
        "quota_max_percent",
        "calls_last_hour",
        "last_used_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "key_prefix"]
    readonly_fields = ["key_prefix", "created_at", "last_used_at", "quota_usage"]
    filter_horizontal = ["managers"]
    actions = ["revoke"]
    fieldsets = [
        (None, {"fields": ["name", "key_prefix", "is_active", "managers", "created_at", "last_used_at"]}),
        (
            "Share of the Flickr quota",
            {
                "fields": ["quota_weight", "quota_max_percent", "quota_usage"],
                "description": "When calls must wait for a Flickr key's quota, each client gets calls "
                "in proportion to its weight; a cap limits it even when others are idle.",
            },
        ),
    ]

    @admin.display(description="Flickr calls (1 h)")
    def calls_last_hour(self, obj: ApiClient) -> int:
        from jobs.usage import last_hour

        app_ids = list(obj.accounts.values_list("app_id", flat=True).distinct())
        return sum(t["flickr_calls"] for t in last_hour(client_id=obj.pk, app_ids=app_ids).values())

    @admin.display(description="Use of the quota, last hour")
    def quota_usage(self, obj: ApiClient | None) -> str:
        from jobs.usage import client_usage

        if obj is None or obj._state.adding:
            return "—"
        usage = client_usage(obj)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}%</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    key["flickr_app"],
                    key["flickr_calls"],
                    key["share_of_quota_percent"],
                    key["answered_without_flickr"],
                    key["quota_waits"],
                    key["waiting_for_quota_now"],
                )
                for key in usage["keys"]
            ),
        )
        return format_html(
            "<table><tr><th>Flickr app</th><th>Flickr calls</th><th>of its quota</th>"
            "<th>answered without Flickr</th><th>waited for quota</th><th>waiting now</th></tr>{}"
            "</table><p>Refused (429, in-flight cap): {}. Unfinished jobs: {}.</p>",
            rows,
            usage["rejections"],
            usage["unfinished_jobs"],
        )

    def save_model(self, request: HttpRequest, obj: ApiClient, form: Any, change: bool) -> None:
        if not change:
            key = ApiClient.generate_key()
            obj.set_key(key)
            super().save_model(request, obj, form, change)
            # Shown once: only its hash is kept.
            self.message_user(
                request,
                f"API key for {obj.name} (copy it now, it will not be shown again): {key}",
                level=messages.WARNING,
            )
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke the selected clients' keys")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        count = queryset.update(is_active=False)
        lookups.forget()  # an update sends no signal
        self.message_user(request, f"Revoked {count} client(s).")


@admin.register(FlickrApp)
class FlickrAppAdmin(admin.ModelAdmin):
    list_display = ["name", "masked_key", "is_server_app", "quota_per_hour", "created_at"]
    readonly_fields = ["masked_key", "secret_state", "is_server_app", "created_at"]
    fields = ["name", "masked_key", "secret_state", "is_server_app", "quota_per_hour", "created_at"]

    @admin.display(description="API key")
    def masked_key(self, obj: FlickrApp) -> str:
        return f"{obj.api_key[:4]}…{obj.api_key[-2:]}" if obj.api_key else ""

    @admin.display(description="Secret")
    def secret_state(self, obj: FlickrApp) -> str:
        return "•••••••• (encrypted)" if obj.api_secret_encrypted else "not set"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


ACCOUNT_FIELDS = (
    "user_id",
    "client",
    "app",
    "nsid",
    "username",
    "fullname",
    "perms",
    "token_state",
    "status",
    "status_reason",
    "created_at",
    "updated_at",
    "last_used_at",
    "duplicate_of",
)


@admin.register(FlickrAccount)
class FlickrAccountAdmin(admin.ModelAdmin):
    list_display = ["user_id", "nsid", "username", "perms", "status", "client", "created_at", "last_used_at"]
    list_filter = ["status", "perms", "client"]
    search_fields = ["user_id", "nsid", "username"]
    readonly_fields = ACCOUNT_FIELDS
    fields = ACCOUNT_FIELDS
    list_select_related = ["client"]
    actions = ["check_token_now", "revoke"]

    @admin.display(description="OAuth token")
    def token_state(self, obj: FlickrAccount) -> str:
        return "•••••••• (encrypted)" if obj.oauth_token_encrypted else "not set"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Check token now (flickr.test.login)")
    def check_token_now(self, request: HttpRequest, queryset: Any) -> None:
        for account in queryset.select_related("app", "client")[:50]:
            check = account_check_token(account=account)
            self.message_user(
                request,
                f"{account.username or account.nsid} ({account.user_id}): {check.message}",
                level=messages.SUCCESS if check.ok else messages.WARNING,
            )

    @admin.action(description="Revoke: stop using the accounts and erase their tokens")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        count = account_revoke(account_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            f"Revoked {count} account(s); their tokens are erased. Linking again restores one, same user_id.",
        )


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["client", "note", "state", "created_at", "expires_at", "used_at", "account"]
    list_filter = ["client"]
    search_fields = ["note", "client__name"]
    fields = ["client", "note", "expires_at", "created_by", "created_at", "used_at", "account"]
    readonly_fields = ["created_by", "created_at", "used_at", "account"]
    list_select_related = ["client", "account"]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"expires_at": timezone.now() + timedelta(hours=72)}

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # An invitation is a promise already sent: only its note may change afterwards.
        if obj is not None:
            return [*self.readonly_fields, "client", "expires_at"]
        return list(self.readonly_fields)

    @admin.display(description="State")
    def state(self, obj: Invitation) -> str:
        return obj.state

    def save_model(self, request: HttpRequest, obj: Invitation, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token = Invitation.generate_token()
        obj.set_token(token)
        obj.created_by = request.user if request.user.is_authenticated else None  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
        # Shown once: only its hash is kept.
        url = (
            invitation_url(token)
            if settings.PUBLIC_BASE_URL
            else request.build_absolute_uri(invitation_path(token))
        )
        self.message_user(
            request,
            f"Invitation link for {obj.client.name} (copy it now, it will not be shown again): {url}",
            level=messages.WARNING,
        )
