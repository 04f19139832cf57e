"""Operator view of jobs: find one by id, request id or user_id, see how it went."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from jobs import archive
from jobs.callbacks import callback_host, delivery_resend
from jobs.models import CallbackAttempt, CallbackDelivery, FailedJob, Job

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
