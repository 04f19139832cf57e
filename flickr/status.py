"""Where each Flickr API key stands: quota left this hour and circuit breaker state, for the
admin dashboard and `/readyz`; and callback deliveries that failed for good.

The quota limiter (`flickr/ratelimit.py`) and the circuit breaker (`flickr/breaker.py`) keep
their state in the cache, shared by every worker; this reads it, one entry per FlickrApp.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone

from accounts.models import FlickrApp
from flickr import breaker, ratelimit


def key_states() -> list[dict[str, Any]]:
    """One dict per FlickrApp: app_name, consumer_key_prefix, quota_per_hour, quota_remaining
    (calls of the coming hour not yet reserved), circuit_state (closed, half_open or open)."""
    return [
        {
            "app_name": app.name,
            "consumer_key_prefix": app.api_key[:8],
            "quota_per_hour": ratelimit.quota_per_hour(app.pk),
            "quota_remaining": ratelimit.remaining(app.pk),
            "circuit_state": breaker.state(app.pk).value,
        }
        for app in FlickrApp.objects.order_by("name", "pk")
    ]


def callback_failures(*, hours: int = 1) -> dict[str, Any] | None:
    """Callback deliveries that failed for good in the last `hours`: `{"count": n, "url": the
    admin list of them}`."""
    from jobs.models import CallbackDelivery
    from jobs.models_callbacks import DeliveryState

    since = timezone.now() - timedelta(hours=hours)
    count = CallbackDelivery.objects.filter(state=DeliveryState.FAILED, updated_at__gte=since).count()
    url = reverse("admin:jobs_callbackdelivery_changelist") + f"?state__exact={DeliveryState.FAILED}"
    return {"count": count, "url": url}
