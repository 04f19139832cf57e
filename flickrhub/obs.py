"""Shipping log events to an external log sink (the original service's OBS).

When OBS_API_URL is set, every event the hub logs through structlog is also queued here —
after the redaction processor, so the sink sees exactly what stdout sees — and a background
thread POSTs them in batches (a JSON array of records in the original's schema, header
`X-API-Key: OBS_API_KEY`). Nothing here ever blocks a caller: `submit` appends to a bounded
buffer and returns; when the buffer is full the event is dropped, counted and the drop is
logged. A slow or dead sink therefore costs a job nothing but its log shipping.

The runner asks `call_report()` whether the job's `flickr_api_call` event reached the sink, for
`returnvalue.observability` (the original put the answer of its per-event POST there). It waits
for that answer at most OBS_REPORT_WAIT_MS, and only while the sink has been answering within
that time; once a batch fails or is slow it stops waiting until a batch succeeds quickly again,
so a sink in trouble delays at most one job by that bound.
"""

from __future__ import annotations

import atexit
import contextvars
import json
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import requests
import structlog
from django.core.signals import setting_changed
from django.dispatch import receiver

log = structlog.get_logger(__name__)

SCHEMA_VERSION = 1
# Events whose delivery a caller may ask about; others are shipped without a ticket.
TRACKED_EVENTS = frozenset({"flickr_api_call"})
# Fields that describe where an event happened; the rest of an event is its payload.
CONTEXT_KEYS = ("request_id", "job_id", "user_id", "method", "queue", "attempt")
_ENVELOPE_KEYS = frozenset({"event", "timestamp", "level", "service", "env", "logger", *CONTEXT_KEYS})
# How often the shipper says how many events it dropped, at most.
DROP_LOG_INTERVAL = 10.0
HOSTNAME = socket.gethostname()


def _category(event: str) -> str:
    if event.startswith("flickr_"):
        return "flickr.api"
    if event.startswith("job"):
        return "flickrhub.job"
    if event.startswith("callback"):
        return "flickrhub.callback"
    return "flickrhub"


@dataclass
class Delivery:
    """The fate of one tracked event: set by the shipper once its batch is answered."""

    log_id: str
    job_id: str | None
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None


class ObsSink:
    """A bounded buffer of log records and the thread that ships them in batches."""

    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        service: str,
        environment: str,
        tenant_id: str = "",
        buffer_size: int = 10_000,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        timeout: float = 5.0,
        report_wait: float = 0.2,
        debug: bool = False,
        post: Callable[..., requests.Response] | None = None,
    ) -> None:
        self.url = url
        self._api_key = api_key
        self.service = service
        self.environment = environment
        self.tenant_id = tenant_id
        self.buffer_size = max(1, buffer_size)
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.timeout = timeout
        self.report_wait = report_wait
        self.debug = debug
        self._post = post
        self._lock = threading.Lock()
        self._buffer: deque[tuple[dict[str, Any], Delivery | None]] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        # Counters since start, for tests and the drop log line.
        self.shipped = 0
        self.failed = 0
        self.dropped = 0
        self._dropped_unlogged = 0
        self._last_drop_log = 0.0
        self._last_failure_log = 0.0
        self._failing_since: float | None = None
        # Whether the last batch was answered 2xx within report_wait (see call_report).
        self.answering_quickly = True

    # --- producer side: any thread, never blocks ---------------------------------------------

    def submit(self, event: Mapping[str, Any], *, track: bool = False) -> Delivery | None:
        """Queues one event; returns its Delivery if tracked, None if dropped or untracked."""
        self._ensure_thread()
        record = self._record(event)
        delivery = Delivery(log_id=record["log_id"], job_id=event.get("job_id")) if track else None
        full_batch = False
        with self._lock:
            if len(self._buffer) >= self.buffer_size:
                self.dropped += 1
                self._dropped_unlogged += 1
                dropped = True
            else:
                self._buffer.append((record, delivery))
                dropped = False
                full_batch = len(self._buffer) >= self.batch_size
        if dropped:
            _metrics().obs_events("dropped")
            return None
        if full_batch:
            self._wake.set()
        return delivery

    def nudge(self) -> None:
        """Ship what is buffered now instead of at the next interval."""
        self._wake.set()

    def _record(self, event: Mapping[str, Any]) -> dict[str, Any]:
        name = str(event.get("event", ""))
        record: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "log_id": uuid.uuid4().hex,
            "timestamp": event.get("timestamp"),
            "level": event.get("level", "info"),
            "service": self.service,
            "environment": self.environment,
            "kind": "event",
            "category": _category(name),
            "event": name,
            "message": name,
            "context": {k: event[k] for k in CONTEXT_KEYS if event.get(k) is not None},
            "payload": {k: v for k, v in event.items() if k not in _ENVELOPE_KEYS},
            "host": {"hostname": HOSTNAME, "pid": os.getpid()},
        }
        if self.tenant_id:
            record["tenant_id"] = self.tenant_id
        return record

    # --- the shipper thread --------------------------------------------------------------------

    def _running(self) -> bool:
        return self._pid == os.getpid() and self._thread is not None and self._thread.is_alive()

    def _ensure_thread(self) -> None:
        if self._running():
            return
        with self._lock:
            if self._running():
                return
            if self._pid and self._pid != os.getpid():
                # A forked child (gunicorn, dramatiq) inherits the buffer but not the thread:
                # the parent ships its own events, the child starts clean.
                self._buffer.clear()
            self._pid = os.getpid()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="flickrhub-obs", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        session = requests.Session()
        post = self._post or session.post
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            while True:
                with self._lock:
                    batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
                if not batch:
                    break
                self._ship(post, batch)
            self._log_drops()
            if self._stop.is_set():
                with self._lock:
                    if not self._buffer:
                        self._idle.set()
                        return

    def _ship(
        self, post: Callable[..., requests.Response], batch: list[tuple[dict, Delivery | None]]
    ) -> None:
        from flickrhub.logconfig import redact_text

        body = json.dumps([record for record, _ in batch], default=str)
        started = time.monotonic()
        result: dict[str, Any]
        try:
            response = post(
                self.url,
                data=body.encode(),
                headers={"X-API-Key": self._api_key, "Content-Type": "application/json"},
                timeout=self.timeout,
            )
            ok = 200 <= response.status_code < 300
            result = {"ok": ok, "shipped": ok, "status": response.status_code}
            if self.debug:
                result["body"] = redact_text(response.text[:2000])
        except requests.RequestException as exc:
            ok = False
            result = {"ok": False, "shipped": False, "error": type(exc).__name__}
        elapsed = time.monotonic() - started
        self.answering_quickly = ok and elapsed <= self.report_wait
        if ok:
            self.shipped += len(batch)
            if self._failing_since is not None:
                log.info("obs_sink_recovered", failing_for_s=round(time.monotonic() - self._failing_since, 1))
            self._failing_since = None
        else:
            self.failed += len(batch)
            now = time.monotonic()
            if self._failing_since is None or now - self._last_failure_log > 60:
                # The first failure, then at most one line a minute while it lasts.
                log.warning(
                    "obs_batch_failed",
                    events=len(batch),
                    status=result.get("status"),
                    error=result.get("error"),
                    failed_total=self.failed,
                )
                self._last_failure_log = now
            self._failing_since = self._failing_since or now
        _metrics().obs_events("shipped" if ok else "failed", len(batch))
        if self.debug:
            log.info(
                "obs_sink_answer",
                events=len(batch),
                status=result.get("status"),
                error=result.get("error"),
                body=result.get("body"),
                duration_ms=round(elapsed * 1000, 1),
            )
        for record, delivery in batch:
            if delivery is not None:
                delivery.result = {**result, "log_id": record["log_id"]}
                delivery.done.set()

    def _log_drops(self) -> None:
        now = time.monotonic()
        with self._lock:
            count = self._dropped_unlogged
            if not count or now - self._last_drop_log < DROP_LOG_INTERVAL:
                return
            self._dropped_unlogged = 0
        self._last_drop_log = now
        log.warning(
            "obs_events_dropped",
            count=count,
            dropped_total=self.dropped,
            buffer_size=self.buffer_size,
            message="The log sink's buffer was full (the sink is slow or down); events were not shipped.",
        )

    def close(self, timeout: float = 2.0) -> None:
        """Ships what is buffered and stops the thread, waiting at most `timeout` seconds."""
        thread = self._thread
        if thread is None or self._pid != os.getpid():
            return
        self._idle.clear()
        self._stop.set()
        self._wake.set()
        thread.join(timeout)


# --- the process's sink, the structlog processor, and the runner's report ----------------------

_UNSET: Any = object()
_sink: ObsSink | None = _UNSET
_sink_lock = threading.Lock()
_last_delivery: contextvars.ContextVar[Delivery | None] = contextvars.ContextVar(
    "flickrhub_obs_delivery", default=None
)


def _metrics() -> Any:
    from flickrhub import metrics

    return metrics


def get_sink() -> ObsSink | None:
    """The sink configured by the settings, or None when OBS_API_URL is unset."""
    global _sink
    if _sink is not _UNSET:
        return _sink
    with _sink_lock:
        if _sink is _UNSET:
            from django.conf import settings

            if not settings.configured or not getattr(settings, "OBS_API_URL", ""):
                _sink = None
            else:
                _sink = ObsSink(
                    url=settings.OBS_API_URL,
                    api_key=settings.OBS_API_KEY,
                    service=settings.SERVICE_NAME,
                    environment=settings.SERVICE_ENV,
                    tenant_id=settings.OBS_TENANT_ID,
                    buffer_size=settings.OBS_BUFFER_SIZE,
                    batch_size=settings.OBS_BATCH_SIZE,
                    flush_interval=settings.OBS_FLUSH_INTERVAL_MS / 1000,
                    timeout=settings.OBS_TIMEOUT_SECONDS,
                    report_wait=settings.OBS_REPORT_WAIT_MS / 1000,
                    debug=settings.OBS_DEBUG,
                )
                atexit.register(_sink.close)
    return _sink


def reset_sink() -> None:
    """Forgets the sink (after its buffer is shipped), so the next event reads the settings."""
    global _sink
    with _sink_lock:
        old, _sink = _sink, _UNSET
    if isinstance(old, ObsSink):
        old.close()


@receiver(setting_changed)
def _settings_changed(setting: str, **kwargs: Any) -> None:
    if setting.startswith("OBS_") or setting in ("SERVICE_NAME", "SERVICE_ENV"):
        reset_sink()


def ship(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor (after `redact`): queues a copy of the event for the sink."""
    try:
        sink = get_sink()
    except Exception:  # settings not importable yet: nothing to ship to
        return event_dict
    if sink is None or str(event_dict.get("logger", "")).startswith(__name__):
        return event_dict  # the sink's own lines are not shipped, or a failing sink would echo
    tracked = event_dict.get("event") in TRACKED_EVENTS
    delivery = sink.submit(dict(event_dict), track=tracked)
    if tracked:
        _last_delivery.set(delivery)
    return event_dict


def call_report(*, job_id: str) -> dict[str, Any]:
    """`returnvalue.observability` for the job whose Flickr call this thread just logged."""
    sink = get_sink()
    if sink is None:
        return {"ok": False, "shipped": False, "reason": "disabled"}
    delivery = _last_delivery.get()
    _last_delivery.set(None)
    if delivery is None or delivery.job_id != job_id:
        return {"ok": False, "shipped": False, "reason": "dropped"}
    if not delivery.done.is_set() and sink.answering_quickly and sink.report_wait > 0:
        sink.nudge()
        if not delivery.done.wait(sink.report_wait):
            sink.answering_quickly = False  # do not make the next job wait for a slow sink
    if delivery.result is not None:
        return delivery.result
    return {"ok": True, "shipped": False, "queued": True, "log_id": delivery.log_id}
