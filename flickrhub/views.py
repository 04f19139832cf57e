"""Health endpoints, the home page, and error pages that speak the API's envelope."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from flickrhub.api import error_response


def health(request: HttpRequest) -> JsonResponse:
    """The original service's liveness answer, unchanged: {"status": "ok"}."""
    return JsonResponse({"status": "ok"})


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests; nothing else is checked."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    # Runs in a thread of its own, so it opens (and closes) its own connection.
    conn = connections[DEFAULT_DB_ALIAS]
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        conn.close()


def _check_cache() -> None:
    cache.set("readyz", "1", timeout=5)
    if cache.get("readyz") != "1":
        raise RuntimeError("cache did not return what was written")


def _check_broker() -> None:
    import dramatiq
    import pika
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    if not isinstance(dramatiq.get_broker(), RabbitmqBroker):
        return  # the embedded in-memory broker is always there
    # A connection of its own, opened and closed: a check must not leave connections behind in
    # the broker's per-thread pool, nor disturb the one a web thread publishes on.
    params = pika.URLParameters(settings.BROKER_URL)
    params.connection_attempts = 1
    params.socket_timeout = settings.READYZ_TIMEOUT_SECONDS
    params.blocked_connection_timeout = settings.READYZ_TIMEOUT_SECONDS
    pika.BlockingConnection(params).close()


READY_CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "cache": _check_cache,
    "broker": _check_broker,
}


def _run_checks(timeout: float) -> dict[str, str]:
    """Runs every check at once, each in its own thread and each given `timeout` seconds: a
    dependency that hangs (a black-holed address) fails its own check and no other."""
    results: dict[str, str] = {}

    def run(name: str, check: Callable[[], None]) -> None:
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure means not ready; the type says which
            results[name] = f"unavailable: {type(exc).__name__}"

    threads = {
        name: threading.Thread(target=run, args=(name, check), name=f"readyz-{name}", daemon=True)
        for name, check in READY_CHECKS.items()
    }
    deadline = time.monotonic() + timeout
    for thread in threads.values():
        thread.start()
    for name, thread in threads.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            results[name] = f"unavailable: no answer within {timeout:g}s"
    return {name: results[name] for name in READY_CHECKS}


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database, the cache and the broker answer within READYZ_TIMEOUT_SECONDS
    each; otherwise 503, naming what failed."""
    checks = _run_checks(settings.READYZ_TIMEOUT_SECONDS)
    failed = [name for name, result in checks.items() if result != "ok"]
    body: dict[str, Any] = {"status": "unavailable" if failed else "ok", "checks": checks}
    if failed:
        body["failed"] = failed
    else:
        # Flickr's side, for information: an open circuit holds jobs back but the hub itself is
        # ready, so it does not turn the answer into a 503.
        from flickr.status import key_states

        body["flickr_circuits"] = {key["app_name"]: key["circuit_state"] for key in key_states()}
    return JsonResponse(body, status=503 if failed else 200)


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def _error(
    request: HttpRequest, *, status: int, code: str, api_message: str, title: str, message: str
) -> HttpResponse:
    """An error in the API's envelope under /api/, a page everywhere else."""
    if request.path.startswith("/api/"):
        return error_response(request, status=status, code=code, message=api_message)
    return render(request, "error.html", {"title": title, "message": message}, status=status)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(
        request,
        status=404,
        code="ERR_NOT_FOUND",
        api_message="No such endpoint.",
        title="Page not found",
        message="There is no page at this address.",
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return _error(
        request,
        status=500,
        code="ERR_INTERNAL",
        api_message="Something went wrong on our side; the request id identifies it in the hub's logs.",
        title="Something went wrong",
        message="The error was logged. Try again, or tell the hub's operator.",
    )


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(
        request,
        status=400,
        code="ERR_INVALID_REQUEST",
        api_message="Bad request.",
        title="Bad request",
        message="The request could not be understood.",
    )
