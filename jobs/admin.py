"""Operator view of jobs: find one by id, request id or user_id, see how it went."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from jobs.models import Job

JOB_FIELDS = (
    "id",
    "client",
    "account",
    "target",
    "method",
    "params",
    "state",
    "attempts",
    "max_attempts",
    "result",
    "error",
    "from_cache",
    "callback_url",
    "meta",
    "request_id",
    "created_at",
    "updated_at",
    "published_at",
    "started_at",
    "finished_at",
    "next_attempt_at",
    "lease_until",
)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "method", "state", "target", "attempts", "client", "created_at", "updated_at"]
    list_filter = ["state", "target", "client", "created_at"]
    search_fields = ["=id", "=request_id", "=account__user_id", "method"]
    date_hierarchy = "created_at"
    list_select_related = ["client"]
    readonly_fields = JOB_FIELDS
    fields = JOB_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False
