"""/services/rest/: format, key, method, signature, token and permission checks, then dispatch.

The order of the checks follows FLICKR-API.md §7.2. Every failure is answered in-band with
HTTP 200 (§2.3), except a bad OAuth signature, which is HTTP 401 (§1.5).
"""

from __future__ import annotations

from dataclasses import dataclass

from werkzeug import Response

from .catalog import PERMS, Catalog, perms_level
from .methods import REGISTRY, ApiError, Call
from .models import AccessToken
from .rsp import (
    JSON_CONTENT_TYPE,
    JSONP_CONTENT_TYPE,
    XML_CONTENT_TYPE,
    Node,
    dump_json,
    error_json,
    error_payload,
    json_document,
    jsonp_name,
    render_xml,
)
from .signing import Incoming, OAuthProblem, verify
from .state import SandboxState

FORMATS = ("rest", "json")
INVALID_KEY = "Invalid API Key (Key has invalid format)"
EXPIRED_KEY = "Invalid API Key (Key has expired)"
INVALID_TOKEN = "Invalid auth token"  # noqa: S105 (an error message, not a credential)


@dataclass
class Outcome:
    response: Response
    error_code: int | None = None  # Flickr's in-band code when stat=fail, for the counters


class Renderer:
    """Writes one answer in the format the caller asked for."""

    def __init__(self, args: dict[str, str]) -> None:
        self.format = args.get("format", "rest") or "rest"
        self.plain_json = args.get("nojsoncallback") == "1"
        self.callback = jsonp_name(args.get("jsoncallback"))

    def _json(self, doc: dict) -> Response:
        text = dump_json(doc)
        if self.plain_json:
            return Response(text, content_type=JSON_CONTENT_TYPE)
        return Response(f"{self.callback}({text})", content_type=JSONP_CONTENT_TYPE)

    def ok(self, payload: list[Node]) -> Outcome:
        if self.format == "json":
            return Outcome(self._json(json_document("ok", payload)))
        return Outcome(Response(render_xml("ok", payload), content_type=XML_CONTENT_TYPE))

    def fail(self, code: int, message: str) -> Outcome:
        if self.format == "json":
            return Outcome(self._json(error_json(code, message)), code)
        xml = render_xml("fail", error_payload(code, message))
        return Outcome(Response(xml, content_type=XML_CONTENT_TYPE), code)


def insufficient(required: int, granted: str) -> str:
    return f"Insufficient permissions. Method requires {PERMS[required]} privileges; {granted} granted."


def serve(
    incoming: Incoming,
    state: SandboxState,
    catalog: Catalog,
    *,
    options: dict[str, int],
    forced_error: tuple[int, str] | None = None,
) -> Outcome:
    args = incoming.args
    out = Renderer(args)
    if out.format not in FORMATS:
        # Answered in XML: the caller's format is the thing we don't know (§7.2 step 1).
        return Renderer({}).fail(111, f'Format "{out.format}" not found')
    if forced_error is not None:
        return out.fail(*forced_error)

    consumer = state.consumer(incoming.consumer_key)
    if consumer is None:
        return out.fail(100, INVALID_KEY)
    if consumer.expired:
        return out.fail(100, EXPIRED_KEY)

    name = args.get("method", "")
    info = catalog.get(name)
    registered = REGISTRY.get(name)
    if info is None:
        return out.fail(112, f'Method "{name}" not found')
    if registered is None:
        return out.fail(112, f'Method "{name}" not found (the sandbox does not implement it)')

    token: AccessToken | None = None
    if incoming.signed:
        token = state.access_token(incoming.token)
        if incoming.token and token is None:
            # A token Flickr never issued has no secret to check the signature with.
            return out.fail(98, INVALID_TOKEN)
        try:
            verify(incoming, state, consumer, token.secret if token else "")
        except OAuthProblem as problem:
            return Outcome(problem.response())
    if token is not None and (token.revoked or token.consumer_key != consumer.key):
        return out.fail(98, INVALID_TOKEN)

    granted = token.perms if token else "none"
    required = max(info.requiredperms, 1) if info.needslogin else info.requiredperms
    if info.needslogin and token is None:
        return out.fail(99, insufficient(required, "none"))
    if info.needssigning and not incoming.signed:
        return out.fail(97, "Missing signature")
    if perms_level(granted) < required:
        return out.fail(99, insufficient(required, granted))

    call_args = dict(args)
    if "oauth_token" in incoming.oauth:
        call_args.setdefault("oauth_token", incoming.oauth["oauth_token"])
    required_args = registered.requires or info.required_arguments
    for arg in required_args:
        if not call_args.get(arg, "").strip():
            missing = info.missing_argument_error(arg)
            if missing is not None:
                return out.fail(missing.code, missing.message)

    call = Call(
        state=state,
        catalog=catalog,
        info=info,
        args=call_args,
        token=token,
        pairs=incoming.pairs,
        options=options,
    )
    try:
        with state.lock:
            payload = registered.handler(call)
    except ApiError as error:
        return out.fail(error.code, error.message)
    return out.ok(payload)
