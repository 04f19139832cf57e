"""Operator view of jobs: find one by id, request id or user_id, see how it went."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from flickrhub.models import JobAttempt
from jobs.models import QUEUE_OF_TARGET, Job, Target

_PERIODS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}


class _SinceFilter(admin.SimpleListFilter):
    field = "created_at"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1h", "Last hour"), ("24h", "Last 24 hours"), ("7d", "Last 7 days")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        period = _PERIODS.get(self.value() or "")
        if period is None:
            return queryset
        return queryset.filter(**{f"{self.field}__gte": timezone.now() - period})


class CreatedSinceFilter(_SinceFilter):
    title = "accepted"
    parameter_name = "created"


class FinishedSinceFilter(_SinceFilter):
    title = "finished"
    parameter_name = "finished"
    field = "finished_at"


class QueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "target__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(target), queue) for target, queue in QUEUE_OF_TARGET.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        if self.value() in Target.values:
            return queryset.filter(target=self.value())
        return queryset


class ErrorClassFilter(admin.SimpleListFilter):
    title = "error class"
    parameter_name = "error_class"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        from flickr.errors import ErrorClass

        return [(c.value, c.value) for c in ErrorClass]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        if self.value():
            if self.value() == "unknown":
                return queryset.filter(Q(error__isnull=True) | Q(error__class__isnull=True))
            return queryset.filter(error__class=self.value())
        return queryset


_ATTEMPT_FIELDS = ("number", "outcome", "started_at", "finished_at", "duration_ms", "worker", "error_text")


class JobAttemptInline(admin.TabularInline):
    model = JobAttempt
    extra = 0
    can_delete = False
    verbose_name = "attempt"
    verbose_name_plural = "attempts (one row per run by a worker)"
    fields = _ATTEMPT_FIELDS
    readonly_fields = _ATTEMPT_FIELDS

    @admin.display(description="error")
    def error_text(self, obj: JobAttempt) -> str:
        if not obj.error:
            return ""
        return str(obj.error.get("message") or obj.error)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _pretty(value: Any) -> str:
    if value in (None, "", {}, []):
        return "—"
    return format_html("<pre style='white-space:pre-wrap;margin:0'>{}</pre>", json.dumps(value, indent=2))


def _span(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = (end - start).total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "method",
        "state",
        "queue",
        "attempts",
        "client",
        "user_id",
        "created_at",
        "updated_at",
    ]
    list_filter = [
        "state",
        QueueFilter,
        "method",
        ErrorClassFilter,
        ("client", admin.RelatedOnlyFieldListFilter),
        ("account", admin.RelatedOnlyFieldListFilter),
        CreatedSinceFilter,
        FinishedSinceFilter,
        "created_at",
    ]
    search_fields = ["request_id"]  # the real search is get_search_results, below
    search_help_text = "A job id, a request id (X-Request-ID) or a user_id."
    date_hierarchy = "created_at"
    list_select_related = ["client", "account"]
    inlines = [JobAttemptInline]
    fieldsets = [
        (None, {"fields": ["id", "state", "method", "queue", "target", "client", "account", "request_id"]}),
        (
            "Attempts and timings",
            {
                "fields": [
                    "attempts",
                    "max_attempts",
                    "created_at",
                    "published_at",
                    "started_at",
                    "finished_at",
                    "next_attempt_at",
                    "lease_until",
                    "waited",
                    "last_run",
                    "total",
                ]
            },
        ),
        ("Error", {"fields": ["error_pretty"]}),
        ("Call", {"fields": ["params_pretty", "upload", "callback_url", "meta_pretty"]}),
        ("Result", {"fields": ["from_cache", "result_pretty"]}),
    ]
    readonly_fields = [
        "id",
        "state",
        "method",
        "queue",
        "target",
        "client",
        "account",
        "request_id",
        "attempts",
        "max_attempts",
        "created_at",
        "published_at",
        "started_at",
        "finished_at",
        "next_attempt_at",
        "lease_until",
        "waited",
        "last_run",
        "total",
        "error_pretty",
        "params_pretty",
        "upload",
        "callback_url",
        "meta_pretty",
        "from_cache",
        "result_pretty",
    ]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Job], search_term: str
    ) -> tuple[QuerySet[Job], bool]:
        """A UUID is a job id or a user_id; anything else a request id. (Admin's own search
        would compare any text with the UUID columns, which some databases refuse.)"""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            as_uuid = uuid.UUID(term)
        except ValueError:
            return queryset.filter(request_id=term[:128]), False
        return queryset.filter(Q(pk=as_uuid) | Q(account__user_id=as_uuid) | Q(request_id=term)), False

    @admin.display(description="queue")
    def queue(self, obj: Job) -> str:
        return obj.queue_name

    @admin.display(description="user_id")
    def user_id(self, obj: Job) -> str:
        return str(obj.account.user_id)

    @admin.display(description="waited in queue")
    def waited(self, obj: Job) -> str:
        return _span(obj.created_at, obj.started_at)

    @admin.display(description="last run took")
    def last_run(self, obj: Job) -> str:
        return _span(obj.started_at, obj.finished_at)

    @admin.display(description="accepted → finished")
    def total(self, obj: Job) -> str:
        return _span(obj.created_at, obj.finished_at)

    @admin.display(description="error")
    def error_pretty(self, obj: Job) -> str:
        return _pretty(obj.error)

    @admin.display(description="params")
    def params_pretty(self, obj: Job) -> str:
        return _pretty(obj.params)

    @admin.display(description="meta")
    def meta_pretty(self, obj: Job) -> str:
        return _pretty(obj.meta)

    @admin.display(description="result")
    def result_pretty(self, obj: Job) -> str:
        return _pretty(obj.result)

    @admin.display(description="file")
    def upload(self, obj: Job) -> str:
        if not obj.upload_filename and not obj.upload_size:
            return "—"
        return (
            f"{obj.upload_filename or '(unnamed)'}, {obj.upload_size or 0} bytes, {obj.upload_content_type}"
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False
