"""Where each Flickr API key stands: quota left this hour and circuit breaker state.

The shared quota limiter and the per-key circuit breaker fill this in (they keep their state in
the cache); until they land every key reports `quota_remaining=None` (not measured) and
`circuit_state="closed"`. The admin dashboard reads it, one entry per FlickrApp.
"""

from __future__ import annotations

from typing import Any

from accounts.models import FlickrApp

# Flickr's documented budget per API key.
QUOTA_PER_HOUR = 3600


def key_states() -> list[dict[str, Any]]:
    """One dict per FlickrApp: app_name, consumer_key_prefix, quota_per_hour, quota_remaining
    (None when not measured), circuit_state (closed, half_open or open)."""
    return [
        {
            "app_name": app.name,
            "consumer_key_prefix": app.api_key[:8],
            "quota_per_hour": QUOTA_PER_HOUR,
            "quota_remaining": None,
            "circuit_state": "closed",
        }
        for app in FlickrApp.objects.order_by("name", "pk")
    ]


def callback_failures(*, hours: int = 1) -> dict[str, Any] | None:
    """Callback deliveries that failed for good in the last `hours`: `{"count": n, "url": the
    admin list of them}`. None while callback delivery is not recorded in this build; the
    callbacks feature fills it in."""
    return None
