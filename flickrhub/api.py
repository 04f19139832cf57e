"""The API's envelope and errors, shared by every endpoint.

Every answer under /api/v1 is `{"request_id", "data", "error"}` (the original service's
envelope), errors included: a client of the original parses ours unchanged. Codes are stable;
the README lists them.
"""

from __future__ import annotations

from typing import Any

import structlog
from django import db
from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

log = structlog.get_logger(__name__)


class ApiError(exceptions.APIException):
    """An error answered in the envelope with a stable code."""

    def __init__(
        self,
        *,
        status_code: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def request_id_of(request: HttpRequest | Request) -> str:
    return getattr(request, "request_id", "") or getattr(getattr(request, "_request", None), "request_id", "")


def envelope(request: HttpRequest | Request, data: Any, status_code: int = 200, **kw: Any) -> Response:
    return Response(
        {"request_id": request_id_of(request), "data": data, "error": None},
        status=status_code,
        **kw,
    )


def error_body(request: HttpRequest | Request, code: str, message: str, details: Any = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"request_id": request_id_of(request), "data": None, "error": error}


def error_response(
    request: HttpRequest, *, status: int, code: str, message: str, details: Any = None
) -> JsonResponse:
    """An envelope error from plain Django code (middleware, 404 handler), outside DRF."""
    return JsonResponse(error_body(request, code, message, details), status=status)


def enveloped(name: str, data: serializers.Serializer | None) -> serializers.Serializer:
    """The envelope `{request_id, data, error}` around `data`, for the OpenAPI schema."""
    return inline_serializer(
        name=name,
        fields={
            "request_id": serializers.CharField(),
            "data": data if data is not None else serializers.JSONField(allow_null=True),
            "error": serializers.JSONField(allow_null=True),
        },
    )


def flatten_errors(detail: Any, prefix: str = "") -> list[str]:
    """DRF's nested validation errors as the original's flat list of readable strings."""
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                name = prefix
            out.extend(flatten_errors(value, name))
        return out
    if isinstance(detail, list):
        out = []
        for item in detail:
            out.extend(flatten_errors(item, prefix))
        return out
    text = str(detail)
    return [f"{prefix}: {text}" if prefix else text]


# DRF exception → (status, code, message). Anything else is an unexpected error.
_TRANSLATIONS: dict[type[exceptions.APIException], tuple[str, str]] = {
    exceptions.NotAuthenticated: (
        "ERR_UNAUTHORIZED",
        "Send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
    ),
    exceptions.AuthenticationFailed: ("ERR_UNAUTHORIZED", ""),
    exceptions.PermissionDenied: ("ERR_FORBIDDEN", ""),
    exceptions.NotFound: ("ERR_NOT_FOUND", "No such endpoint."),
    exceptions.MethodNotAllowed: ("ERR_METHOD_NOT_ALLOWED", ""),
    exceptions.UnsupportedMediaType: ("ERR_UNSUPPORTED_MEDIA_TYPE", ""),
    exceptions.NotAcceptable: ("ERR_NOT_ACCEPTABLE", ""),
    exceptions.Throttled: ("ERR_RATE_LIMITED", ""),
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    if isinstance(exc, ApiError):
        return Response(
            error_body(request, exc.code, exc.message, exc.details),  # type: ignore[arg-type]
            status=exc.status_code,
            headers=exc.headers,
        )
    if isinstance(exc, exceptions.ValidationError):
        return Response(
            error_body(request, "ERR_INVALID_REQUEST", "Invalid request", flatten_errors(exc.detail)),  # type: ignore[arg-type]
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.ParseError):
        return Response(
            error_body(
                request,  # type: ignore[arg-type]
                "ERR_INVALID_REQUEST",
                f"The body is not valid JSON: {exc.detail}",
            ),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.UnsupportedMediaType):
        message = "Send the body as application/json (multipart/form-data for upload and replace)."
        return Response(
            error_body(request, "ERR_UNSUPPORTED_MEDIA_TYPE", message),  # type: ignore[arg-type]
            status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        )
    if isinstance(exc, exceptions.APIException):
        code, message = "ERR_REQUEST_FAILED", ""
        for cls, translation in _TRANSLATIONS.items():
            if isinstance(exc, cls):
                code, message = translation
                break
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
        return Response(
            error_body(request, code, message or str(exc.detail)),  # type: ignore[arg-type]
            status=exc.status_code,
            headers=headers,
        )
    if isinstance(exc, (db.OperationalError, db.InterfaceError)):
        # The database dropped the connection or is restarting: worth a retry, like a 503
        # from the broker. Django opens a fresh connection for the next request.
        log.warning("api_database_unavailable", error=str(exc)[:200])
        return Response(
            error_body(
                request,  # type: ignore[arg-type]
                "ERR_DATABASE_UNAVAILABLE",
                "The hub's database did not answer. Try again shortly (with an Idempotency-Key, "
                "a retried enqueue cannot queue the job twice).",
            ),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "1"},
        )
    # An unexpected error: logged with its traceback, answered without one.
    log.exception("api_unhandled_error")
    return Response(
        error_body(
            request,  # type: ignore[arg-type]
            "ERR_INTERNAL",
            "Something went wrong on our side; the request id identifies it in the hub's logs.",
        ),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
