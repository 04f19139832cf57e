"""/services/oauth/request_token and /services/oauth/access_token (FLICKR-API.md §1.2, §1.4)."""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

from werkzeug import Response

from .models import Consumer
from .signing import OAUTH_CONTENT_TYPE, Incoming, OAuthProblem, verify
from .state import SandboxState

_SIGNED = ("oauth_consumer_key", "oauth_signature_method", "oauth_signature")
_FRESH = ("oauth_timestamp", "oauth_nonce")


def _form(**values: str) -> Response:
    # Flickr encodes spaces as %20 and "@" as %40 ("Jamal%20Fanaian", "21207597%40N07").
    body = urlencode(values, quote_via=quote, safe="")
    return Response(body, status=200, content_type=OAUTH_CONTENT_TYPE)


def _require(incoming: Incoming, names: tuple[str, ...]) -> None:
    absent = [n for n in names if not incoming.oauth.get(n)]
    if absent:
        raise OAuthProblem("parameter_absent", oauth_parameters_absent="&".join(absent))


def _consumer(incoming: Incoming, state: SandboxState) -> Consumer:
    consumer = state.consumer(incoming.oauth.get("oauth_consumer_key"))
    if consumer is None:
        raise OAuthProblem("consumer_key_unknown")
    if consumer.expired:
        raise OAuthProblem("consumer_key_rejected")
    return consumer


def _valid_callback(callback: str) -> bool:
    if callback == "oob":
        return True
    parts = urlsplit(callback)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def request_token(incoming: Incoming, state: SandboxState) -> Response:
    try:
        _require(incoming, (*_SIGNED, *_FRESH, "oauth_callback"))
        consumer = _consumer(incoming, state)
        verify(incoming, state, consumer)
        callback = incoming.oauth["oauth_callback"]
        if not _valid_callback(callback):
            raise OAuthProblem("parameter_rejected", oauth_parameters_rejected="oauth_callback")
    except OAuthProblem as problem:
        return problem.response()
    rt = state.issue_request_token(consumer.key, callback)
    return _form(oauth_callback_confirmed="true", oauth_token=rt.token, oauth_token_secret=rt.secret)


def access_token(incoming: Incoming, state: SandboxState) -> Response:
    try:
        _require(incoming, (*_SIGNED, *_FRESH, "oauth_token", "oauth_verifier"))
        consumer = _consumer(incoming, state)
        rt = state.live_request_token(incoming.oauth["oauth_token"])
        # Unknown, used or expired: there is no secret to check the signature against.
        if rt is None or rt.consumer_key != consumer.key:
            raise OAuthProblem("token_rejected")
        verify(incoming, state, consumer, rt.secret)
        granted = state.exchange(rt, incoming.oauth["oauth_verifier"])
        if granted is None:
            raise OAuthProblem("token_rejected")
    except OAuthProblem as problem:
        return problem.response()
    user = state.user(granted.nsid)
    assert user is not None  # tokens are only minted for seeded users
    # The answer does not say which perms were granted (§1.4): clients remember what they asked.
    return _form(
        fullname=user.fullname,
        oauth_token=granted.token,
        oauth_token_secret=granted.secret,
        user_nsid=user.nsid,
        username=user.username,
    )
