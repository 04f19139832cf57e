"""Health endpoints, the home page, and error pages that speak the API's envelope."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from flickrhub.api import error_response


def health(request: HttpRequest) -> JsonResponse:
    """The original service's liveness answer, unchanged: {"status": "ok"}."""
    return JsonResponse({"status": "ok"})


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    cache.set("readyz", "1", timeout=5)
    if cache.get("readyz") != "1":
        raise RuntimeError("cache did not return what was written")


def _check_broker() -> None:
    import dramatiq
    import pika.exceptions
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = dramatiq.get_broker()
    if not isinstance(broker, RabbitmqBroker):
        return  # the embedded in-memory broker is always there
    try:
        broker.connection.process_data_events(time_limit=0)
    except pika.exceptions.AMQPError:
        # This thread's connection went stale (an idle web process misses heartbeats): one
        # fresh connection decides.
        del broker.connection
        broker.connection.process_data_events(time_limit=0)


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database, the cache and the broker answer; 503 names what failed."""
    checks: dict[str, Any] = {}
    for name, check in (("database", _check_database), ("cache", _check_cache), ("broker", _check_broker)):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; the type says which
            checks[name] = f"unavailable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


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
