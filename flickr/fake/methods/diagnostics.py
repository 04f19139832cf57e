"""flickr.test.*, flickr.auth.oauth.checkToken and flickr.reflection.* (FLICKR-API.md §1.8, §5.1)."""

from __future__ import annotations

from ..rsp import Node, is_xml_name, node, text_node
from .base import Call, method


@method("flickr.test.echo")
def echo(call: Call) -> list[Node]:
    # Flickr echoes every argument back as an element (§8): api_key, method, format and all.
    # The signature is left out: the log and the echo never repeat proof of a secret.
    return [
        text_node(name, value)
        for name, value in call.pairs
        if name != "oauth_signature" and is_xml_name(name)
    ]


@method("flickr.test.login")
def login(call: Call) -> list[Node]:
    user = call.state.user(call.viewer)
    assert user is not None  # needslogin: the checks before us guarantee a token
    return [node("user", {"id": user.nsid}, [text_node("username", user.username)])]


@method("flickr.test.null")
def null(call: Call) -> list[Node]:
    return []


@method("flickr.auth.oauth.checkToken")
def check_token(call: Call) -> list[Node]:
    record = call.state.access_token(call.arg("oauth_token"))
    if record is None or record.revoked:
        raise call.fail(98, "Invalid auth token")
    user = call.state.user(record.nsid)
    assert user is not None
    return [
        node(
            "oauth",
            children=[
                text_node("token", record.token),
                text_node("perms", record.perms),
                node(
                    "user",
                    {"nsid": user.nsid, "username": user.username, "fullname": user.fullname},
                ),
            ],
        )
    ]


@method("flickr.reflection.getMethods")
def get_methods(call: Call) -> list[Node]:
    return [
        node(
            "methods",
            children=[text_node("method", name) for name in call.catalog.names()],
            arrays=("method",),
        )
    ]


def _flickr_int(value: int) -> int | str:
    # Real reflection output mixes types (§5.1): 0 is a number, other values are strings.
    return value if value == 0 else str(value)


@method("flickr.reflection.getMethodInfo")
def get_method_info(call: Call) -> list[Node]:
    info = call.catalog.get(call.arg("method_name"))
    if info is None:
        raise call.fail(1)
    described = [text_node("description", info.description)]
    if info.response:
        described.append(text_node("response", info.response))
    if info.explanation:
        described.append(text_node("explanation", info.explanation))
    api_key = node(
        "argument",
        {"name": "api_key", "optional": 0},
        text="Your API application key. "
        '<a href="/services/api/misc.api_keys.html">See here</a> for more details.',
    )
    arguments = [api_key] + [
        node("argument", {"name": a.name, "optional": str(int(a.optional))}, text=a.description)
        for a in info.arguments
    ]
    errors = [
        node("error", {"code": str(e.code), "message": e.message}, text=e.description) for e in info.errors
    ]
    for code in info.universal_errors:
        u = call.catalog.universal[code]
        errors.append(node("error", {"code": u.code, "message": u.message}, text=u.description))
    # Three siblings under <rsp>, as the live API answers (not nested as in the doc page).
    return [
        node(
            "method",
            {
                "name": info.name,
                "needslogin": int(info.needslogin),
                "needssigning": int(info.needssigning),
                "requiredperms": _flickr_int(info.requiredperms),
            },
            described,
        ),
        node("arguments", children=arguments, arrays=("argument",)),
        node("errors", children=errors, arrays=("error",)),
    ]
