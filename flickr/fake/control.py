"""The control endpoint under /__sandbox/: lets a hub in another process steer the sandbox.

Served only when FakeFlickr(control=True). JSON in, JSON out. Not part of Flickr.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import TYPE_CHECKING, Any

from werkzeug import Request, Response
from werkzeug.routing import Rule

from .state import SANDBOX_CONSUMER_KEY, StateError

if TYPE_CHECKING:
    from .app import FakeFlickr

RULES = [
    Rule("/__sandbox/", endpoint="control.index", methods=["GET"]),
    Rule("/__sandbox/counters", endpoint="control.counters", methods=["GET"]),
    Rule("/__sandbox/calls", endpoint="control.calls", methods=["GET"]),
    Rule("/__sandbox/users", endpoint="control.users", methods=["GET"]),
    Rule("/__sandbox/reset", endpoint="control.reset", methods=["POST"]),
    Rule("/__sandbox/faults", endpoint="control.faults", methods=["GET", "POST", "DELETE"]),
    Rule("/__sandbox/quota", endpoint="control.quota", methods=["GET", "POST"]),
    Rule("/__sandbox/tokens", endpoint="control.tokens", methods=["POST"]),
    Rule("/__sandbox/consumers", endpoint="control.consumers", methods=["POST"]),
    Rule("/__sandbox/keys/<key>/expire", endpoint="control.expire", methods=["POST"]),
    Rule("/__sandbox/keys/<key>/restore", endpoint="control.restore", methods=["POST"]),
]


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, content_type="application/json")


def _body(request: Request) -> dict[str, Any]:
    if not request.get_data():
        return {}
    data = json.loads(request.get_data(as_text=True))
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def serve(app: FakeFlickr, request: Request, endpoint: str, values: Mapping[str, str]) -> Response:
    try:
        return _HANDLERS[endpoint](app, request, values)
    except (ValueError, TypeError, StateError) as error:
        # json.JSONDecodeError is a ValueError; so are bad fault kinds and options.
        return _json({"error": str(error)}, status=400)


def _index(app: FakeFlickr, request: Request, values: Mapping[str, str]) -> Response:
    return _json({"endpoints": sorted(str(rule.rule) for rule in RULES)})


def _counters(app: FakeFlickr, request: Request, values: Mapping[str, str]) -> Response:
    snapshot = app.counters.snapshot()
    # JSON object keys are strings; HTTP statuses and error codes become "200", "98"...
    return _json(
        {k: ({str(a): b for a, b in v.items()} if isinstance(v, dict) else v) for k, v in snapshot.items()}
    )


def _calls(app: FakeFlickr, request: Request, values: Mapping[str, str]) -> Response:
    limit = request.args.get("limit", "100")
    return _json(app.counters.calls(limit=int(limit)))


def _users(app: FakeFlickr, request: Request, values: Mapping[str, str]) -> Response:
    return _json([{"nsid": u.nsid, "username": u.username, "fullname": u.fullname} for u in app.state.users])


def _reset(app: FakeFlickr, request: Request, values: Mapping[str, str]) -> Response:
    app.counters.reset()
    app.quota.reset()
    return _json({"ok": True})


def _faults(app: FakeFlickr, request: Request, values: Mapping[str, str]) -> Response:
    if request.method == "DELETE":
        app.faults.clear()
        return _json({"ok": True})
    if request.method == "POST":
        fault = app.faults.add(**_body(request))
        return _json(fault.as_dict(), status=201)
    return _json(app.faults.active())


def _quota(app: FakeFlickr, request: Request, values: Mapping[str, str]) -> Response:
    if request.method == "POST":
        body = _body(request)
        per_hour = body.get("per_hour")
        window = body.get("window_seconds")
        app.set_quota(None if per_hour is None else int(per_hour), float(window) if window else None)
    return _json({"per_hour": app.quota.per_hour, "window_seconds": app.quota.window_seconds})


def _tokens(app: FakeFlickr, request: Request, values: Mapping[str, str]) -> Response:
    body = _body(request)
    # Hands a token *secret* to the caller by design (a hub in another process needs it);
    # it is never logged.
    token, secret = app.state.issue_access_token(
        consumer_key=body.get("consumer_key") or SANDBOX_CONSUMER_KEY,
        nsid=body.get("nsid") or None,
        perms=body.get("perms", "read"),
    )
    record = app.state.access_token(token)
    assert record is not None
    user = app.state.user(record.nsid)
    assert user is not None
    return _json(
        {
            "oauth_token": token,
            "oauth_token_secret": secret,
            "user_nsid": user.nsid,
            "username": user.username,
            "fullname": user.fullname,
            "perms": record.perms,
        },
        status=201,
    )


def _consumers(app: FakeFlickr, request: Request, values: Mapping[str, str]) -> Response:
    body = _body(request)
    app.state.add_consumer(str(body["key"]), str(body["secret"]), str(body.get("name", "An app")))
    return _json({"key": body["key"]}, status=201)


def _expire(app: FakeFlickr, request: Request, values: Mapping[str, str]) -> Response:
    app.state.expire_key(values["key"])
    return _json({"key": values["key"], "expired": True})


def _restore(app: FakeFlickr, request: Request, values: Mapping[str, str]) -> Response:
    app.state.restore_key(values["key"])
    return _json({"key": values["key"], "expired": False})


_HANDLERS = {
    "control.index": _index,
    "control.counters": _counters,
    "control.calls": _calls,
    "control.users": _users,
    "control.reset": _reset,
    "control.faults": _faults,
    "control.quota": _quota,
    "control.tokens": _tokens,
    "control.consumers": _consumers,
    "control.expire": _expire,
    "control.restore": _restore,
}


def home(app: FakeFlickr) -> Response:
    """A short page for a person who opens the sandbox's base URL in a browser."""
    demo = app.state.demo_user
    people = "".join(
        f"<li><code>{escape(u.nsid)}</code> {escape(u.username)} ({escape(u.fullname)})</li>"
        for u in app.state.users
    )
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flickr sandbox</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto">
<h1>Flickr sandbox</h1>
<p>A stand-in for Flickr's API, for FlickrHub's tests and local runs. Seed {app.state.seed}.</p>
<ul>
<li>REST: <code>/services/rest/</code></li>
<li>Upload / replace: <code>/services/upload/</code>, <code>/services/replace/</code></li>
<li>OAuth: <code>/services/oauth/request_token</code>, <code>/services/oauth/authorize</code>,
<code>/services/oauth/access_token</code></li>
</ul>
<p>People (the demo user is <code>{escape(demo.nsid)}</code>):</p>
<ul>{people}</ul>
</body></html>
"""
    return Response(html, content_type="text/html; charset=utf-8")
