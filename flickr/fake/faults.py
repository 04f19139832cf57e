"""Fault injection: the ways Flickr misbehaves, on demand (FLICKR-API.md §2.5, §4.2, §7.2).

Each fault matches calls by method (shell-style pattern, e.g. "flickr.photos.*", or the
endpoint name "upload"/"replace"/"oauth.request_token") and consumer key, fires with a
probability drawn from a seeded generator, and can be limited to a number of firings.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from werkzeug import Response

from .quota import too_many_requests

KINDS = ("latency", "http_error", "rate_limit", "flickr_error", "drop_connection", "key_expired")
_OPTIONS: dict[str, set[str]] = {
    "latency": {"ms", "min_ms", "max_ms", "mean_ms", "stddev_ms"},
    "http_error": {"status", "retry_after"},
    "rate_limit": {"retry_after"},
    "flickr_error": {"code", "message"},
    "drop_connection": set(),
    "key_expired": set(),
}
HTTP_ERROR_STATUSES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
FLICKR_ERROR_MESSAGES = {105: "Service currently unavailable", 106: "Write operation failed"}


@dataclass
class Fault:
    id: int
    kind: str
    method: str | None = None
    consumer_key: str | None = None
    count: int | None = None  # firings left; None = forever
    probability: float = 1.0
    opts: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    def matches(self, method: str, consumer_key: str | None) -> bool:
        if self.method is not None and not fnmatchcase(method, self.method):
            return False
        return self.consumer_key is None or self.consumer_key == consumer_key

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _validate(kind: str, probability: float, count: int | None, opts: dict[str, Any]) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; choose from {', '.join(KINDS)}")
    unknown = set(opts) - _OPTIONS[kind]
    if unknown:
        raise ValueError(f"{kind} takes no option(s) {', '.join(sorted(unknown))}")
    if not 0.0 <= probability <= 1.0:
        raise ValueError("probability must be between 0 and 1")
    if count is not None and count < 1:
        raise ValueError("count must be a positive number of firings")
    if kind == "http_error" and int(opts.get("status", 503)) not in HTTP_ERROR_STATUSES:
        raise ValueError(f"http_error status must be one of {sorted(HTTP_ERROR_STATUSES)}")
    if kind == "latency" and not ({"ms", "max_ms", "mean_ms"} & set(opts)):
        raise ValueError("latency needs ms, or min_ms/max_ms, or mean_ms/stddev_ms")


class FaultInjector:
    def __init__(self, seed: int = 1) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(f"faults:{seed}")
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(
        self,
        kind: str,
        method: str | None = None,
        consumer_key: str | None = None,
        count: int | None = None,
        probability: float = 1.0,
        **opts: Any,
    ) -> Fault:
        _validate(kind, probability, count, opts)
        with self._lock:
            fault = Fault(self._next_id, kind, method, consumer_key, count, probability, opts)
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def draw(self, method: str, consumer_key: str | None) -> list[Fault]:
        """The faults that fire for this call, in the order they were added."""
        fired: list[Fault] = []
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, consumer_key):
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                fault.fired += 1
                if fault.count is not None:
                    fault.count -= 1
                fired.append(fault)
            self._faults = [f for f in self._faults if f.count is None or f.count > 0]
        return fired

    def latency_seconds(self, fault: Fault) -> float:
        opts = fault.opts
        with self._lock:
            if "ms" in opts:
                ms = float(opts["ms"])
            elif "max_ms" in opts:
                ms = self._rng.uniform(float(opts.get("min_ms", 0)), float(opts["max_ms"]))
            else:
                ms = self._rng.gauss(float(opts["mean_ms"]), float(opts.get("stddev_ms", 0)))
        return max(ms, 0.0) / 1000.0


def http_error_response(fault: Fault) -> Response:
    if fault.kind == "rate_limit":
        return too_many_requests(fault.opts.get("retry_after"))
    status = int(fault.opts.get("status", 503))
    reason = HTTP_ERROR_STATUSES[status]
    # Edge errors are HTML pages, not API envelopes (§2.5).
    html = (
        f"<html><head><title>{status} {reason}</title></head>"
        f"<body><h1>{status} {reason}</h1>The server is temporarily unable to service your "
        "request. Please try again later.</body></html>"
    )
    response = Response(html, status=status, content_type="text/html")
    if fault.opts.get("retry_after") is not None:
        response.headers["Retry-After"] = str(fault.opts["retry_after"])
    return response
