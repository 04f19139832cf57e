"""Per-consumer-key hourly quota (FLICKR-API.md §4).

Flickr limits each API key, across all of its users, to about 3,600 calls an hour; past
that its edge answers HTTP 429 with a bare HTML page, not an API error (§2.5, §4.2).
A sliding one-hour window per key.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from werkzeug import Response

WINDOW_SECONDS = 3600.0
TOO_MANY_REQUESTS_HTML = (
    "<html><body><h1>429 Too Many Requests</h1>"
    "You have sent too many requests in a given amount of time.</body></html>"
)


def too_many_requests(retry_after: int | None = None) -> Response:
    # Flickr sends no Retry-After (§4.1); faults may add one to exercise clients that honour it.
    response = Response(TOO_MANY_REQUESTS_HTML, status=429, content_type="text/html")
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


class HourlyQuota:
    def __init__(
        self, per_hour: int | None, clock: Callable[[], float], window_seconds: float = WINDOW_SECONDS
    ) -> None:
        """`per_hour=None` means unlimited; 0 refuses every call. `window_seconds` shortens the
        hour for tests and benchmarks (`per_hour` calls per window)."""
        self.per_hour = per_hour
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Count one call for `key`; False (and not counted) when the hour is used up."""
        if self.per_hour is None:
            return True
        now = self._clock()
        with self._lock:
            window = self._windows.setdefault(key, deque())
            while window and window[0] <= now - self.window_seconds:
                window.popleft()
            if len(window) >= self.per_hour:
                return False
            window.append(now)
            return True

    def used(self, key: str) -> int:
        now = self._clock()
        with self._lock:
            return sum(1 for t in self._windows.get(key, ()) if t > now - self.window_seconds)

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
