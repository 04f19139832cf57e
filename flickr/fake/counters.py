"""Call counters and a bounded log of recent calls, for tests and benchmarks to read."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

# Arguments never written to the log: signatures are proof of a secret, files are big.
_UNLOGGED = frozenset({"oauth_signature", "photo"})
_MAX_VALUE = 200

DROPPED = 0  # the HTTP status recorded for a connection closed without an answer


@dataclass
class CallRecord:
    ts: float
    endpoint: str  # rest, upload, replace, oauth.request_token, ...
    method: str  # the Flickr method, or the endpoint for non-REST calls
    args: dict[str, str]
    token: str | None
    consumer_key: str | None
    status: int  # HTTP status; 0 when the connection was dropped
    error_code: int | None = None  # Flickr's in-band error code, if stat=fail
    duration_ms: float = 0.0
    faults: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def loggable_args(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in _UNLOGGED or name in out:
            continue
        out[name] = value if len(value) <= _MAX_VALUE else value[:_MAX_VALUE] + "…"
    return out


class CallCounters:
    def __init__(self, log_size: int = 1000) -> None:
        self._lock = threading.Lock()
        self._log: deque[CallRecord] = deque(maxlen=log_size)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._total = 0
            self._by_key: Counter[str] = Counter()
            self._by_token: Counter[str] = Counter()
            self._by_method: Counter[str] = Counter()
            self._by_status: Counter[int] = Counter()
            self._by_error: Counter[int] = Counter()
            self._log.clear()

    def record(self, call: CallRecord) -> None:
        with self._lock:
            self._total += 1
            self._by_key[call.consumer_key or ""] += 1
            if call.token:
                self._by_token[call.token] += 1
            self._by_method[call.method] += 1
            self._by_status[call.status] += 1
            if call.error_code is not None:
                self._by_error[call.error_code] += 1
            self._log.append(call)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self._total,
                "by_key": dict(self._by_key),
                "by_token": dict(self._by_token),
                "by_method": dict(self._by_method),
                "by_status": dict(self._by_status),
                "by_error": dict(self._by_error),
            }

    def calls(self, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent calls, oldest first."""
        with self._lock:
            recent = list(self._log)[-limit:] if limit > 0 else []
        return [c.as_dict() for c in recent]
