"""Operator view of jobs: find one by id, request id or user_id, see how it went; the
failed-job archive; callback deliveries."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from flickrhub.models import JobAttempt
from jobs import archive
from jobs.callbacks import callback_host, delivery_resend
from jobs.models import QUEUE_OF_TARGET, CallbackAttempt, CallbackDelivery, FailedJob, Job, Target

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
        "wait_reason",
        "priority",
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
        (
            None,
            {
                "fields": [
                    "id",
                    "state",
                    "method",
                    "queue",
                    "target",
                    "client",
                    "account",
                    "request_id",
                    "priority",
                    "wait_reason",
                    "quota_parked_at",
                ]
            },
        ),
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
    # Nothing of a job is edited by hand: every field shown is read-only.
    readonly_fields = [
        name for _, options in fieldsets for name in options["fields"] if isinstance(name, str)
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


FAILED_FIELDS = (
    "job_link",
    "history",
    "client",
    "account",
    "target",
    "method",
    "params",
    "error_class",
    "error_code",
    "flickr_code",
    "error",
    "attempts",
    "max_attempts",
    "request_id",
    "job_created_at",
    "started_at",
    "finished_at",
    "archived_at",
    "retried_at",
)


@admin.register(FailedJob)
class FailedJobAdmin(admin.ModelAdmin):
    """The failed-job archive: what failed for good, why, and a way to run it again."""

    list_display = [
        "archived_at",
        "job_id",
        "method",
        "error_code",
        "flickr_code",
        "client",
        "account",
        "attempts",
        "retried_at",
    ]
    list_filter = ["error_class", "error_code", "method", "client", "archived_at"]
    search_fields = ["=job_id", "=request_id", "=account__user_id", "method"]
    date_hierarchy = "archived_at"
    list_select_related = ["client", "account"]
    readonly_fields = FAILED_FIELDS
    fields = FAILED_FIELDS
    actions = ["retry_selected", "purge_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: FailedJob | None = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "purge" says what it does
        return actions

    @admin.display(description="job")
    def job_link(self, obj: FailedJob) -> str:
        if not Job.objects.filter(pk=obj.job_id).exists():
            return f"{obj.job_id} (removed)"
        url = reverse("admin:jobs_job_change", args=[obj.job_id])
        return format_html('<a href="{}">{}</a>', url, obj.job_id)

    @admin.display(description="history of this job")
    def history(self, obj: FailedJob) -> str:
        rows = FailedJob.objects.filter(job_id=obj.job_id).order_by("archived_at")
        return format_html_join(
            "",
            "<div>{}: failed with {} after {} attempt(s){}</div>",
            (
                (
                    row.archived_at.strftime("%Y-%m-%d %H:%M:%S"),
                    row.error_code,
                    row.attempts,
                    f", retried {row.retried_at:%Y-%m-%d %H:%M:%S}" if row.retried_at else "",
                )
                for row in rows
            ),
        )

    @admin.action(description="Retry selected jobs (same job id, from the first attempt)")
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[FailedJob]) -> None:
        retried = 0
        for failed in queryset:
            problem = archive.retry(failed)
            if problem:
                self.message_user(request, f"Job {failed.job_id} not retried: {problem}.", messages.WARNING)
            else:
                retried += 1
        if retried:
            self.message_user(request, f"{retried} job(s) queued again.", messages.SUCCESS)

    @admin.action(description="Purge selected archive entries", permissions=["delete"])
    def purge_selected(self, request: HttpRequest, queryset: QuerySet[FailedJob]) -> None:
        count, _ = queryset.delete()
        self.message_user(
            request, f"{count} archive entr{'y' if count == 1 else 'ies'} purged.", messages.SUCCESS
        )


ATTEMPT_FIELDS = ("number", "started_at", "status_code", "duration_ms", "error", "response_excerpt")


class CallbackAttemptInline(admin.TabularInline):
    model = CallbackAttempt
    fields = ATTEMPT_FIELDS
    readonly_fields = ATTEMPT_FIELDS
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


DELIVERY_FIELDS = (
    "id",
    "job_link",
    "url",
    "state",
    "attempts",
    "max_attempts",
    "last_status_code",
    "last_error",
    "webhook_id",
    "pretty_body",
    "created_at",
    "updated_at",
    "next_attempt_at",
    "published_at",
    "delivered_at",
)


@admin.register(CallbackDelivery)
class CallbackDeliveryAdmin(admin.ModelAdmin):
    """Callbacks sent or being sent: each try with its answer, and a way to send one again."""

    list_display = ["created_at", "job_id", "host", "state", "attempts", "last_status_code", "delivered_at"]
    list_filter = ["state", "created_at"]
    search_fields = ["=job__id", "=job__request_id", "url"]
    date_hierarchy = "created_at"
    readonly_fields = DELIVERY_FIELDS
    fields = DELIVERY_FIELDS
    inlines = [CallbackAttemptInline]
    actions = ["resend"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: CallbackDelivery | None = None) -> bool:
        return False

    @admin.display(description="host")
    def host(self, obj: CallbackDelivery) -> str:
        return callback_host(obj.url)

    @admin.display(description="job")
    def job_link(self, obj: CallbackDelivery) -> str:
        url = reverse("admin:jobs_job_change", args=[obj.job_id])
        return format_html('<a href="{}">{}</a>', url, obj.job_id)

    @admin.display(description="body")
    def pretty_body(self, obj: CallbackDelivery) -> str:
        try:
            text = json.dumps(json.loads(obj.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = obj.body
        return format_html("<pre>{}</pre>", text)

    @admin.action(description="Resend selected callbacks (same body and webhook-id)")
    def resend(self, request: HttpRequest, queryset: QuerySet[CallbackDelivery]) -> None:
        sent = 0
        for delivery in queryset:
            problem = delivery_resend(delivery.pk)
            if problem:
                self.message_user(
                    request, f"Callback for job {delivery.job_id} not resent: {problem}.", messages.WARNING
                )
            else:
                sent += 1
        if sent:
            self.message_user(request, f"{sent} callback(s) queued to be sent again.", messages.SUCCESS)
