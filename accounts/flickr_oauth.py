"""The Flickr side of OAuth 1.0a (FLICKR-API.md §1): request token, authorize URL, access token.

Signing is requests-oauthlib's OAuth1Session. Flickr answers OAuth failures as HTTP 401 with a
form body `oauth_problem=…&debug_sbs=…` (§1.5); only the problem name is kept, because the
signature base string quotes the tokens that were signed. Every secret Flickr hands back is
registered with the log redactor before anything else can print it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode

import requests
from django.conf import settings
from oauthlib.oauth1.rfc5849.errors import OAuth1Error
from requests_oauthlib import OAuth1Session
from requests_oauthlib.oauth1_session import TokenMissing, TokenRequestDenied

from flickrhub.logconfig import register_secret

PERMS = ("read", "write", "delete")
OOB = "oob"

# A verifier shown by Flickr for out-of-band flows: 9 digits as 123-456-789 (§1.3).
_OOB_VERIFIER_RE = re.compile(r"^\d{9}$")
# A verifier carried by the callback: 16 hex characters; accept any plain token-like text.
_CALLBACK_VERIFIER_RE = re.compile(r"^[A-Za-z0-9._~-]{4,128}$")


class Failure(enum.StrEnum):
    UNREACHABLE = "unreachable"  # no answer: network, timeout, 5xx
    APP_REJECTED = "app_rejected"  # the consumer key is unknown or disabled
    SIGNATURE_REJECTED = "signature_rejected"  # the consumer secret (or token secret) is wrong
    TOKEN_REJECTED = "token_rejected"  # noqa: S105 — wrong verifier, declined, used or expired request token
    BAD_ANSWER = "bad_answer"  # 200 but not the fields OAuth promises


class OAuthFailure(Exception):
    def __init__(self, failure: Failure, detail: str = "") -> None:
        super().__init__(f"{failure.value}: {detail}" if detail else failure.value)
        self.failure = failure
        self.detail = detail


@dataclass(frozen=True)
class RequestToken:
    token: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class AccessGrant:
    nsid: str
    username: str
    fullname: str
    token: str = field(repr=False)
    secret: str = field(repr=False)


def normalise_verifier(raw: str) -> str | None:
    """The verifier as Flickr wants it back, or None when it cannot be one.

    People copy the out-of-band code as shown (`123-456-789`), without the dashes, or with
    spaces; all of those are the same 9 digits, sent back in Flickr's dashed form. A callback's
    verifier is passed through as it came."""
    text = (raw or "").strip()
    digits = re.sub(r"[\s-]", "", text)
    if _OOB_VERIFIER_RE.match(digits):
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    if _CALLBACK_VERIFIER_RE.match(text) and not text.isdigit():
        return text
    return None


def authorize_url(token: str, perms: str) -> str:
    # Always send perms: Flickr shows "Oops!" for some apps without it (§1.3).
    return f"{settings.FLICKR_OAUTH_AUTHORIZE_URL}?{urlencode({'oauth_token': token, 'perms': perms})}"


def _problem(exc: TokenRequestDenied) -> OAuthFailure:
    status = exc.status_code
    body = exc.response.text[:2000] if exc.response is not None else ""
    problem = parse_qs(body).get("oauth_problem", [""])[0]
    if status >= 500 or status == 429:
        return OAuthFailure(Failure.UNREACHABLE, f"HTTP {status}")
    if problem in ("signature_invalid", "signature_method_rejected"):
        return OAuthFailure(Failure.SIGNATURE_REJECTED, problem)
    if problem in ("consumer_key_unknown", "consumer_key_rejected", "consumer_key_refused"):
        return OAuthFailure(Failure.APP_REJECTED, problem)
    if problem in ("token_rejected", "token_expired", "token_used", "token_revoked", "permission_denied"):
        return OAuthFailure(Failure.TOKEN_REJECTED, problem)
    failure = Failure.TOKEN_REJECTED if status == 401 else Failure.BAD_ANSWER
    return OAuthFailure(failure, problem or f"HTTP {status}")


def _session(consumer_key: str, consumer_secret: str, **kwargs: str) -> OAuth1Session:
    return OAuth1Session(
        consumer_key,
        client_secret=consumer_secret,
        signature_method="HMAC-SHA1",
        signature_type="AUTH_HEADER",
        **kwargs,
    )


def _fetch(session: OAuth1Session, url: str, **kwargs: str) -> dict[str, str]:
    try:
        with session:
            if "verifier" in kwargs:
                return session.fetch_access_token(url, verifier=kwargs["verifier"], timeout=_timeout())
            return session.fetch_request_token(url, timeout=_timeout())
    except TokenRequestDenied as exc:
        raise _problem(exc) from None
    except (TokenMissing, ValueError, OAuth1Error) as exc:
        raise OAuthFailure(Failure.BAD_ANSWER, type(exc).__name__) from None
    except requests.RequestException as exc:
        raise OAuthFailure(Failure.UNREACHABLE, type(exc).__name__) from None


def _timeout() -> float:
    return float(min(settings.FLICKR_TIMEOUT_SECONDS, 30))


def fetch_request_token(*, consumer_key: str, consumer_secret: str, callback: str) -> RequestToken:
    session = _session(consumer_key, consumer_secret, callback_uri=callback)
    answer = _fetch(session, settings.FLICKR_OAUTH_REQUEST_TOKEN_URL)
    token, secret = answer.get("oauth_token", ""), answer.get("oauth_token_secret", "")
    register_secret(secret)
    if not token or not secret:
        raise OAuthFailure(Failure.BAD_ANSWER, "no oauth_token in the answer")
    return RequestToken(token=token, secret=secret)


def fetch_access_token(
    *, consumer_key: str, consumer_secret: str, request_token: RequestToken, verifier: str
) -> AccessGrant:
    session = _session(
        consumer_key,
        consumer_secret,
        resource_owner_key=request_token.token,
        resource_owner_secret=request_token.secret,
    )
    answer = _fetch(session, settings.FLICKR_OAUTH_ACCESS_TOKEN_URL, verifier=verifier)
    token, secret = answer.get("oauth_token", ""), answer.get("oauth_token_secret", "")
    register_secret(token)
    register_secret(secret)
    nsid = answer.get("user_nsid", "")
    if not token or not secret or not nsid:
        raise OAuthFailure(Failure.BAD_ANSWER, "no oauth_token, oauth_token_secret or user_nsid")
    return AccessGrant(
        nsid=nsid,
        username=answer.get("username", ""),
        fullname=answer.get("fullname", ""),  # may be absent (§1.4)
        token=token,
        secret=secret,
    )
