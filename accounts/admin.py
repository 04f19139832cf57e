"""Operator views of clients, apps and accounts. Secrets are never shown: only whether set."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from accounts.models import ApiClient, FlickrAccount, FlickrApp


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "key_prefix", "is_active", "created_at", "last_used_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "key_prefix"]
    readonly_fields = ["key_prefix", "created_at", "last_used_at"]
    filter_horizontal = ["managers"]
    actions = ["revoke"]

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
        self.message_user(request, f"Revoked {count} client(s).")


@admin.register(FlickrApp)
class FlickrAppAdmin(admin.ModelAdmin):
    list_display = ["name", "masked_key", "is_server_app", "created_at"]
    readonly_fields = ["masked_key", "secret_state", "is_server_app", "created_at"]
    fields = ["name", "masked_key", "secret_state", "is_server_app", "created_at"]

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
)


@admin.register(FlickrAccount)
class FlickrAccountAdmin(admin.ModelAdmin):
    list_display = ["user_id", "nsid", "username", "perms", "status", "client", "created_at", "last_used_at"]
    list_filter = ["status", "perms", "client"]
    search_fields = ["user_id", "nsid", "username"]
    readonly_fields = ACCOUNT_FIELDS
    fields = ACCOUNT_FIELDS

    @admin.display(description="OAuth token")
    def token_state(self, obj: FlickrAccount) -> str:
        return "•••••••• (encrypted)" if obj.oauth_token_encrypted else "not set"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
