"""Callback deliveries: a job's end POSTed to its callback URL, and every try at it.

Kept beside `jobs/models.py` (which imports this module, so Django registers the models in the
`jobs` app) because the job model and its transitions change for other reasons.

A delivery follows the job's pattern: the row is the truth, a message carries only its id,
and every change of state is one conditional UPDATE, so a message delivered twice (a sweeper
re-publish, a RabbitMQ redelivery) sends once.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import ApiClient


class DeliveryState(models.TextChoices):
    PENDING = "pending"  # waiting for its first try or its next one
    SENDING = "sending"  # a worker is POSTing it now
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # every try failed, or the URL was refused at send time


class CallbackDeliveryQuerySet(models.QuerySet["CallbackDelivery"]):
    def claim(
        self, delivery_id: uuid.UUID | str, *, lease_seconds: float, takeover: bool
    ) -> CallbackDelivery | None:
        """Moves a delivery to `sending` for one worker, counting the try. A `sending` one is
        claimable only when its lease ran out (the worker died) or, with `takeover`, when
        RabbitMQ redelivered the message of a consumer that is gone."""
        now = timezone.now()
        claimable = Q(state=DeliveryState.PENDING) | Q(state=DeliveryState.SENDING, lease_until__lt=now)
        if takeover:
            claimable |= Q(state=DeliveryState.SENDING)
        updated = self.filter(claimable, pk=delivery_id).update(
            state=DeliveryState.SENDING,
            run_token=uuid.uuid4(),
            attempts=F("attempts") + 1,
            lease_until=now + timedelta(seconds=lease_seconds),
            next_attempt_at=None,
            updated_at=now,
        )
        if not updated:
            return None
        return self.select_related("job__account", "job__client").get(pk=delivery_id)

    def _finish(self, delivery: CallbackDelivery, **fields: Any) -> bool:
        """Applies a transition only if this run still holds the delivery."""
        fields["updated_at"] = timezone.now()
        return bool(
            self.filter(pk=delivery.pk, state=DeliveryState.SENDING, run_token=delivery.run_token).update(
                lease_until=None, **fields
            )
        )

    def mark_delivered(self, delivery: CallbackDelivery, *, status_code: int) -> bool:
        return self._finish(
            delivery,
            state=DeliveryState.DELIVERED,
            last_status_code=status_code,
            last_error="",
            delivered_at=timezone.now(),
        )

    def schedule_retry(
        self, delivery: CallbackDelivery, *, at: datetime, status_code: int | None, error: str
    ) -> bool:
        return self._finish(
            delivery,
            state=DeliveryState.PENDING,
            next_attempt_at=at,
            published_at=None,
            last_status_code=status_code,
            last_error=error[:500],
        )

    def give_up(self, delivery: CallbackDelivery, *, status_code: int | None, error: str) -> bool:
        return self._finish(
            delivery, state=DeliveryState.FAILED, last_status_code=status_code, last_error=error[:500]
        )

    def reopen(self, delivery_id: uuid.UUID | str, *, extra_attempts: int) -> bool:
        """An operator's resend: a delivered or failed delivery gets `extra_attempts` more
        tries. Refused (False) while it is still pending or being sent."""
        now = timezone.now()
        return bool(
            self.filter(pk=delivery_id, state__in=[DeliveryState.DELIVERED, DeliveryState.FAILED]).update(
                state=DeliveryState.PENDING,
                max_attempts=F("attempts") + extra_attempts,
                next_attempt_at=None,
                published_at=None,
                updated_at=now,
            )
        )

    def mark_published(self, delivery_id: uuid.UUID | str) -> None:
        self.filter(pk=delivery_id).update(published_at=timezone.now())


class CallbackDelivery(models.Model):
    """One end of a job, to be POSTed to the job's callback URL. The body is fixed when the job
    ends, so every try (and a resend) sends the same bytes under the same `webhook-id`, and a
    receiver can drop duplicates by that id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="callback_deliveries")
    # Which end of the job this is: a job retried after failing ends again, with a new delivery.
    job_finished_at = models.DateTimeField()
    url = models.URLField(max_length=2000)
    body = models.TextField()
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField()
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    run_token = models.UUIDField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = CallbackDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "callback deliveries"
        constraints = [
            # One delivery per end of a job, whoever schedules it (the runner or the sweeper).
            models.UniqueConstraint(fields=["job", "job_finished_at"], name="one_delivery_per_job_end")
        ]
        indexes = [
            # the sweeper's scans and the admin's filter
            models.Index(fields=["state", "next_attempt_at"], name="delivery_state_due"),
        ]

    def __str__(self) -> str:
        return f"callback for job {self.job_id} ({self.state})"

    @property
    def webhook_id(self) -> str:
        """The Standard Webhooks message id: the same for every try of this delivery."""
        return f"msg_{self.id.hex}"


class CallbackAttempt(models.Model):
    """One try at a delivery: when, how long, and what came back."""

    delivery = models.ForeignKey(CallbackDelivery, on_delete=models.CASCADE, related_name="history")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    # The start of the receiver's answer, for the operator wondering why it said no.
    response_excerpt = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="one_row_per_attempt")]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"


class CallbackSecret(models.Model):
    """An API client's Standard Webhooks signing secret (`whsec_…`), encrypted at rest. After a
    rotation the previous secret still signs, beside the new one, until `previous_valid_until`,
    so a receiver can switch without rejecting callbacks in between."""

    client = models.OneToOneField(ApiClient, on_delete=models.CASCADE, related_name="callback_secret")
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"callback secret of {self.client_id}"
