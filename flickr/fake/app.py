"""FakeFlickr: the sandbox as one plain WSGI application (no Django inside)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug import Request, Response
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from . import control as control_api
from .authorize import authorize
from .catalog import Catalog, load_catalog
from .counters import DROPPED, CallCounters, CallRecord, loggable_args
from .faults import FLICKR_ERROR_MESSAGES, Fault, FaultInjector, http_error_response
from .oauth_endpoints import access_token, request_token
from .quota import WINDOW_SECONDS, HourlyQuota, too_many_requests
from .rest import EXPIRED_KEY, Outcome, serve
from .signing import Incoming
from .state import SandboxState
from .upload import serve_replace, serve_upload

MB = 1024 * 1024
UPLOAD_ENDPOINTS = ("upload", "replace")
# Faults that answer in-band need an API envelope; OAuth endpoints have none.
IN_BAND_ENDPOINTS = ("rest", *UPLOAD_ENDPOINTS)

_RULES = [
    Rule("/", endpoint="home", methods=["GET"]),
    Rule("/services/oauth/request_token", endpoint="oauth.request_token", methods=["GET", "POST"]),
    Rule("/services/oauth/access_token", endpoint="oauth.access_token", methods=["GET", "POST"]),
    Rule("/services/oauth/authorize", endpoint="oauth.authorize", methods=["GET", "POST"]),
    # Both spellings work on Flickr (§2.1); no redirect, or the signed URL would change.
    Rule("/services/rest/", endpoint="rest", methods=["GET", "POST"], strict_slashes=False),
    Rule("/services/upload/", endpoint="upload", methods=["POST"], strict_slashes=False),
    Rule("/services/replace/", endpoint="replace", methods=["POST"], strict_slashes=False),
]


class DropConnection(Exception):
    """Close the socket without answering (the drop_connection fault)."""


class FakeFlickr:
    """A faithful, deterministic Flickr stand-in. Call it as a WSGI application."""

    def __init__(
        self,
        seed: int = 1,
        *,
        quota_per_hour: int | None = 3600,
        control: bool = True,
        latency_ms: float = 0.0,
        request_token_ttl: float = 600.0,
        upload_max_bytes: int = 200 * MB,
        upload_limit: int = 1000,
        search_cap: int = 4000,
        photos_per_user: tuple[int, int] = (30, 60),
        calls_log_size: int = 1000,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.clock = clock or time.time
        self.state = SandboxState(
            seed,
            clock=self.clock,
            request_token_ttl=request_token_ttl,
            upload_limit=upload_limit,
            photos_per_user=photos_per_user,
        )
        self.catalog: Catalog = load_catalog()
        self.counters = CallCounters(calls_log_size)
        self.faults = FaultInjector(seed)
        self.quota = HourlyQuota(quota_per_hour, self.clock)
        self.control = control
        self.latency_ms = latency_ms
        self.upload_max_bytes = upload_max_bytes
        self.search_cap = search_cap
        rules = _RULES + (control_api.RULES if control else [])
        # A werkzeug Rule belongs to one Map; each app gets its own copies.
        self.url_map = Map([rule.empty() for rule in rules])

    def set_quota(self, per_hour: int | None, window_seconds: float | None = None) -> None:
        """Calls allowed per consumer key per hour (or per `window_seconds`); None for no limit."""
        self.quota.per_hour = per_hour
        self.quota.window_seconds = window_seconds or WINDOW_SECONDS
        self.quota.reset()

    # ------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, values = self.url_map.bind_to_environ(environ).match()
        except HTTPException as error:
            return error(environ, start_response)
        try:
            if endpoint == "home":
                response = control_api.home(self)
            elif endpoint.startswith("control."):
                response = control_api.serve(self, request, endpoint, values)
            else:
                response = self._service(request, endpoint)
        except DropConnection:
            _drop(environ)
            raise ConnectionAbortedError("sandbox fault: connection dropped") from None
        finally:
            # Uploads are spooled to temporary files; let them go now.
            request.close()
        return response(environ, start_response)

    # ------------------------------------------------------------ /services/*

    def _service(self, request: Request, endpoint: str) -> Response:
        started = time.perf_counter()
        unsigned = ("photo",) if endpoint in UPLOAD_ENDPOINTS else ()
        incoming = Incoming.parse(request, unsigned_fields=unsigned)
        method = incoming.args.get("method", "") if endpoint == "rest" else endpoint
        record = CallRecord(
            ts=self.clock(),
            endpoint=endpoint,
            method=method,
            args=loggable_args(incoming.pairs),
            token=incoming.token,
            consumer_key=incoming.consumer_key,
            status=DROPPED,
        )
        try:
            outcome = self._answer(incoming, endpoint, method, record)
            record.status = outcome.response.status_code
            record.error_code = outcome.error_code
            return outcome.response
        finally:
            record.duration_ms = round((time.perf_counter() - started) * 1000, 3)
            self.counters.record(record)

    def _answer(self, incoming: Incoming, endpoint: str, method: str, record: CallRecord) -> Outcome:
        if endpoint == "oauth.authorize":
            # A page for people, not an API call: no quota, no faults.
            return Outcome(authorize(incoming.request, self.state))
        fired = self.faults.draw(method, incoming.consumer_key)
        record.faults = [f.kind for f in fired]
        delay = self.latency_ms / 1000 + sum(
            self.faults.latency_seconds(f) for f in fired if f.kind == "latency"
        )
        if delay > 0:
            time.sleep(delay)
        if not self.quota.allow(incoming.consumer_key or ""):
            return Outcome(too_many_requests())
        forced = None
        for fault in fired:
            if fault.kind == "drop_connection":
                raise DropConnection
            if fault.kind in ("http_error", "rate_limit"):
                return Outcome(http_error_response(fault))
            if fault.kind in ("flickr_error", "key_expired") and endpoint in IN_BAND_ENDPOINTS:
                forced = _forced_error(fault)
                break
        return self._dispatch(incoming, endpoint, forced)

    def _dispatch(self, incoming: Incoming, endpoint: str, forced: tuple[int, str] | None) -> Outcome:
        if endpoint == "rest":
            options = {"search_cap": self.search_cap}
            return serve(incoming, self.state, self.catalog, options=options, forced_error=forced)
        if endpoint == "upload":
            return serve_upload(incoming, self.state, max_bytes=self.upload_max_bytes, forced_error=forced)
        if endpoint == "replace":
            return serve_replace(incoming, self.state, max_bytes=self.upload_max_bytes, forced_error=forced)
        if endpoint == "oauth.request_token":
            return Outcome(request_token(incoming, self.state))
        return Outcome(access_token(incoming, self.state))


def _forced_error(fault: Fault) -> tuple[int, str]:
    if fault.kind == "key_expired":
        return 100, EXPIRED_KEY
    code = int(fault.opts.get("code", 105))
    return code, fault.opts.get("message") or FLICKR_ERROR_MESSAGES.get(code, "Unknown error")


def _drop(environ: dict[str, Any]) -> None:
    """Shut the client's socket so it sees the connection close with no answer at all."""
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
