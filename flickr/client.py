"""Signed calls to Flickr.

Every call is signed with OAuth 1.0a HMAC-SHA1 (requests-oauthlib) using the consumer app that
issued the account's token — the original signed every token with the server's key, which
breaks tokens issued for another app. REST calls ask for `format=json&nojsoncallback=1` and are
POSTed form-encoded, as flickrapi does, so write methods work too (Flickr wants writes POSTed).
"""

from __future__ import annotations

import email.utils
import functools
import json
import threading
import time
from typing import IO, Any
from urllib.parse import parse_qs
from xml.etree.ElementTree import Element

import requests
import structlog
from defusedxml import ElementTree
from django.conf import settings
from requests_oauthlib import OAuth1
from requests_toolbelt import MultipartEncoder
from urllib3.exceptions import NewConnectionError

from accounts.models import OAuthCredentials
from flickr import catalog
from flickr.errors import ErrorClass, FlickrError, from_stat_fail
from flickrhub import metrics

log = structlog.get_logger(__name__)

# Parameters the hub sets itself; a caller may not override them (the original let `format`
# be overridden, which made the job's result unparseable).
RESERVED_PARAMS = frozenset({"method", "format", "nojsoncallback", "jsoncallback", "api_key"})

_local = threading.local()


def _session() -> requests.Session:
    """One keep-alive session per worker thread: requests.Session is not thread-safe."""
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers["User-Agent"] = "FlickrHub/1.0"
        # The environment's proxies and CA bundle are read once per endpoint (`_environment`),
        # not on every call as requests does by default: that was a sixteenth of a worker's
        # CPU per job.
        session.trust_env = False
        _local.session = session
    return session


@functools.lru_cache(maxsize=32)
def _environment(url: str) -> dict[str, Any]:
    """What requests would take from the environment for `url`: HTTP(S)_PROXY / NO_PROXY and
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE. The environment does not change under a process."""
    with requests.Session() as probe:
        found = probe.merge_environment_settings(url, {}, None, None, None)
    return {"proxies": found["proxies"], "verify": found["verify"]}


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _oauth(creds: OAuthCredentials) -> OAuth1:
    return OAuth1(
        creds.consumer_key,
        client_secret=creds.consumer_secret,
        resource_owner_key=creds.token,
        resource_owner_secret=creds.token_secret,
        signature_method="HMAC-SHA1",
        signature_type="AUTH_HEADER",
    )


def _transport_error(exc: requests.RequestException, *, read_only: bool) -> FlickrError:
    # A connection that was never made sent nothing: always safe to try again. Once the request
    # may have reached Flickr, only a read (or a write that sets a value, `read_only` here) is;
    # another write's outcome is unknown.
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    never_sent = isinstance(exc, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)
    if never_sent or read_only:
        return FlickrError(
            f"Flickr could not be reached: {type(exc).__name__}",
            error_class=ErrorClass.RETRY,
            code="ERR_FLICKR_UNREACHABLE",
        )
    return FlickrError(
        "The call was sent to Flickr but no answer came back, so it is unknown whether the write "
        "happened; it was not repeated. Check on Flickr before sending it again.",
        error_class=ErrorClass.UNKNOWN_OUTCOME,
        code="ERR_FLICKR_OUTCOME_UNKNOWN",
    )


def _http_error(response: requests.Response) -> FlickrError:
    status = response.status_code
    if status == 401:
        # OAuth failures are not REST-shaped: `oauth_problem=signature_invalid&debug_sbs=…`
        # (§1.5). debug_sbs quotes the signed parameters, so only the problem name is kept.
        problem = parse_qs(response.text[:2000]).get("oauth_problem", ["unknown"])[0]
        return FlickrError(
            f"Flickr rejected the call's OAuth credentials (oauth_problem={problem}). "
            "The account must be linked again.",
            error_class=ErrorClass.RELINK,
            code="ERR_FLICKR_RELINK_REQUIRED",
            http_status=status,
        )
    if status == 429 or status >= 500:
        return FlickrError(
            f"Flickr answered HTTP {status}" + (" (rate limited)" if status == 429 else ""),
            error_class=ErrorClass.RETRY,
            code="ERR_FLICKR_RATE_LIMITED" if status == 429 else "ERR_FLICKR_UNAVAILABLE",
            http_status=status,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    return FlickrError(
        f"Flickr answered HTTP {status}",
        error_class=ErrorClass.CALLER,
        code="ERR_FLICKR_HTTP",
        http_status=status,
    )


def call_rest(
    creds: OAuthCredentials, method: str, params: dict[str, str], *, timeout: float | None = None
) -> dict[str, Any]:
    """Calls a REST method and returns Flickr's parsed `stat: ok` answer; raises FlickrError."""
    read_only = catalog.is_read_only(method)
    repeatable = catalog.is_safe_to_repeat(method)
    data = {**params, "method": method, "format": "json", "nojsoncallback": "1"}
    started = time.monotonic()
    try:
        response = _session().post(
            settings.FLICKR_REST_URL,
            data=data,
            auth=_oauth(creds),
            timeout=timeout or settings.FLICKR_TIMEOUT_SECONDS,
            **_environment(settings.FLICKR_REST_URL),
        )
    except requests.RequestException as exc:
        error = _transport_error(exc, read_only=repeatable)
        _log_call(method, started, error=error)
        raise error from None
    if response.status_code != 200:
        error = _http_error(response)
        _log_call(method, started, error=error)
        raise error
    try:
        body = response.json()
    except json.JSONDecodeError:
        error = FlickrError(
            "Flickr's answer was not JSON",
            error_class=ErrorClass.RETRY if repeatable else ErrorClass.UNKNOWN_OUTCOME,
            code="ERR_FLICKR_BAD_RESPONSE",
            http_status=200,
        )
        _log_call(method, started, error=error)
        raise error from None
    if not isinstance(body, dict) or body.get("stat") != "ok":
        body = body if isinstance(body, dict) else {}
        error = from_stat_fail(
            _as_int(body.get("code")), str(body.get("message", "no message")), read_only=read_only
        )
        _log_call(method, started, error=error)
        raise error
    _log_call(method, started)
    return body


def call_upload(
    creds: OAuthCredentials,
    endpoint: str,
    fields: dict[str, str],
    photo: IO[bytes],
    filename: str,
) -> dict[str, Any]:
    """Sends a file to Flickr's `upload` or `replace` endpoint and returns its parsed answer
    (`{"stat": "ok", "photoid": {"_content": …}}`, or `ticketid` for async); raises FlickrError.

    Flickr signs every field except the file (FLICKR-API.md §3.1), so the fields are signed as
    a form-encoded stand-in and the real multipart body is sent with that Authorization header,
    as flickrapi does. The body streams from `photo` as it is sent: the file is never in memory.
    Upload and replace answer in XML whatever `format` says, and both are writes: a call that
    may have reached Flickr is never repeated."""
    url = settings.FLICKR_UPLOAD_URL if endpoint == "upload" else settings.FLICKR_REPLACE_URL
    signed = requests.Request("POST", url, data=fields, auth=_oauth(creds)).prepare()
    body = MultipartEncoder(
        fields={**fields, "photo": (filename or "photo", photo, "application/octet-stream")}
    )
    headers = {"Authorization": signed.headers["Authorization"], "Content-Type": body.content_type}
    started = time.monotonic()
    try:
        response = _session().post(
            url,
            data=body,
            headers=headers,
            timeout=(settings.FLICKR_TIMEOUT_SECONDS, settings.FLICKR_UPLOAD_TIMEOUT_SECONDS),
            **_environment(url),
        )
    except requests.RequestException as exc:
        error = _transport_error(exc, read_only=False)
        _log_call(endpoint, started, error=error)
        raise error from None
    if response.status_code != 200:
        error = _http_error(response)
        _log_call(endpoint, started, error=error)
        raise error
    try:
        answer = _upload_answer(response.content)
    except FlickrError as error:
        _log_call(endpoint, started, error=error)
        raise
    _log_call(endpoint, started)
    return answer


def _upload_answer(content: bytes) -> dict[str, Any]:
    """`<rsp stat="ok"><photoid secret="…">123</photoid></rsp>` as Flickr's JSON would have it;
    a `stat="fail"` answer as a FlickrError carrying any extra elements (`duplicate_photo_id`)."""
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError:
        root = None
    if root is None or root.tag != "rsp":
        raise FlickrError(
            "Flickr's answer to the upload was not the XML it sends; the upload may or may not "
            "have happened, so it was not repeated. Check the account on Flickr.",
            error_class=ErrorClass.UNKNOWN_OUTCOME,
            code="ERR_FLICKR_BAD_RESPONSE",
            http_status=200,
        )
    children = {child.tag: _xml_node(child) for child in root if child.tag != "err"}
    if root.get("stat") == "ok":
        return {"stat": "ok", **children}
    err = root.find("err")
    code = _as_int(err.get("code") if err is not None else None)
    message = (err.get("msg") if err is not None else None) or "no message"
    error = from_stat_fail(code, message, read_only=False)
    error.details = {tag: node.get("_content", node) for tag, node in children.items()}
    raise error


def _xml_node(element: Element) -> Any:
    node: dict[str, Any] = dict(element.attrib)
    text = (element.text or "").strip()
    if text:
        node["_content"] = text
    return node


def _as_int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return -1


def _log_call(method: str, started: float, *, error: FlickrError | None = None) -> None:
    seconds = time.monotonic() - started
    duration_ms = round(seconds * 1000, 1)
    if error is None:
        metrics.flickr_call(method=method, outcome="success", seconds=seconds)
        log.info("flickr_api_call", method=method, outcome="success", duration_ms=duration_ms)
        return
    outcome = "retry" if error.error_class is ErrorClass.RETRY else "fail"
    metrics.flickr_call(method=method, outcome=outcome, seconds=seconds)
    log.info(
        "flickr_api_call",
        method=method,
        outcome=outcome,
        duration_ms=duration_ms,
        error_code=error.code,
        flickr_code=error.flickr_code,
        http_status=error.http_status,
    )
