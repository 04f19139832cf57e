"""What went wrong talking to Flickr, in classes the job runner can act on.

Flickr reports API errors in-band with HTTP 200 (`stat: fail`), OAuth signature problems as
HTTP 401 with an `oauth_problem` body, throttling as HTTP 429 HTML pages from its edge, and
outages as 5xx (shared/FLICKR-API.md §1.5, §2.3-2.5, §4.2). Each outcome falls in one class.
"""

from __future__ import annotations

import enum


class ErrorClass(enum.StrEnum):
    RETRY = "retry"  # transient: network, 5xx, 429, 105 — try again later
    RELINK = "relink"  # the token is no good: the person must link the account again
    CALLER = "caller"  # the call itself is wrong: unknown method, bad argument
    KEY_DISABLED = "key_disabled"  # Flickr turned the API key off (100)
    UNKNOWN_OUTCOME = "unknown_outcome"  # a write was sent and no answer came back


# Universal in-band codes (§2.4) and their class; method-specific codes (< 95) are caller errors.
_UNIVERSAL: dict[int, ErrorClass] = {
    95: ErrorClass.CALLER,  # SSL is required: a misconfigured URL
    96: ErrorClass.RELINK,
    97: ErrorClass.RELINK,
    98: ErrorClass.RELINK,
    99: ErrorClass.RELINK,
    100: ErrorClass.KEY_DISABLED,
    105: ErrorClass.RETRY,
    111: ErrorClass.CALLER,
    112: ErrorClass.CALLER,
    114: ErrorClass.CALLER,
    115: ErrorClass.CALLER,
    116: ErrorClass.CALLER,
}


class FlickrError(Exception):
    """A Flickr call that did not succeed. `code` is FlickrHub's stable error code."""

    def __init__(
        self,
        message: str,
        *,
        error_class: ErrorClass,
        code: str,
        flickr_code: int | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_class = error_class
        self.code = code
        self.flickr_code = flickr_code
        self.http_status = http_status
        self.retry_after = retry_after
        self.details = details or {}

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code,
            "message": self.message,
            "class": self.error_class.value,
        }
        if self.flickr_code is not None:
            out["flickr_code"] = self.flickr_code
        if self.http_status is not None:
            out["http_status"] = self.http_status
        if self.details:
            out["details"] = self.details
        return out


def from_stat_fail(code: int, message: str, *, read_only: bool) -> FlickrError:
    """An in-band `stat: fail` answer as a typed error."""
    if code == 106:
        # "Write operation failed" is temporary, but retrying a write that may have half
        # happened can double it: only idempotent reads are retried (§2.4).
        error_class = ErrorClass.RETRY if read_only else ErrorClass.CALLER
    else:
        error_class = _UNIVERSAL.get(code, ErrorClass.CALLER)
    hub_code = {
        ErrorClass.RELINK: "ERR_FLICKR_RELINK_REQUIRED",
        ErrorClass.KEY_DISABLED: "ERR_FLICKR_KEY_DISABLED",
        ErrorClass.RETRY: "ERR_FLICKR_UNAVAILABLE",
    }.get(error_class, "ERR_FLICKR_API")
    return FlickrError(
        f"Flickr error {code}: {message}",
        error_class=error_class,
        code=hub_code,
        flickr_code=code,
        http_status=200,
    )
