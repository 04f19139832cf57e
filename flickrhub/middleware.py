"""Request-wide concerns: the request id and the API's body-size limit."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse

# A caller's X-Request-ID is kept only if it is short and plain, so it cannot smuggle text
# into log lines or headers.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Gives every request an id (the caller's `X-Request-ID` if sane), binds it to the log
    context, and returns it in the `X-Request-ID` header. The API envelope repeats it, and it
    follows the job into the worker."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
        finally:
            structlog.contextvars.clear_contextvars()
        response["X-Request-ID"] = request_id
        return response


class ApiBodyLimitMiddleware:
    """Answers 413 for an API request whose declared body is over API_MAX_BODY_BYTES before a
    byte of it is read (DRF's parsers read the stream without Django's size check). Multipart
    uploads have a larger limit here, and the file's own limit is enforced while it streams."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            # A multipart body carries a file: its limit is the file's plus room for the fields.
            multipart = (request.content_type or "").startswith("multipart/")
            limit = settings.API_MAX_BODY_BYTES + (settings.UPLOAD_MAX_BYTES if multipart else 0)
            if length > limit:
                from flickrhub.api import error_response

                what = "a photo or video (UPLOAD_MAX_BYTES) plus its fields" if multipart else "a JSON body"
                return error_response(
                    request,
                    status=413,
                    code="ERR_PAYLOAD_TOO_LARGE",
                    message=f"The request body is {length} bytes; the limit for {what} is {limit} bytes.",
                )
        return self.get_response(request)
