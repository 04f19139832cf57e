"""Flickr's response envelope: one element tree, rendered as REST XML or as JSON.

Every answer is built once as a small tree of `Node`s and rendered by Flickr's own mapping
(FLICKR-API.md §2.2): attributes become members, text becomes `_content`, repeated or
list-container children become arrays, and `stat` sits beside the payload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

Scalar = str | int
Attrs = dict[str, Scalar | None]  # annotate attribute dicts built before node() sees them

# XML 1.0 cannot carry most C0 control characters, even escaped; titles typed by people can.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
# A JSONP wrapper name ends up in a script the caller runs; accept only plain identifiers.
_CALLBACK_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$.]{0,63}$")

XML_CONTENT_TYPE = "text/xml; charset=utf-8"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# What Flickr sends for JSONP (lesspress.net capture, §2.2).
JSONP_CONTENT_TYPE = "text/javascript; charset=utf-8"


@dataclass
class Node:
    """One XML element. `arrays` names children that are always JSON arrays, even with 0 or 1
    items, the way Flickr renders list containers such as `photos.photo` (§2.2)."""

    name: str
    attrs: dict[str, Scalar] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    text: str | None = None
    arrays: tuple[str, ...] = ()


def node(
    name: str,
    attrs: Mapping[str, Scalar | None] | None = None,
    children: Iterable[Node] = (),
    *,
    text: Scalar | None = None,
    arrays: tuple[str, ...] = (),
) -> Node:
    """Build a Node, dropping attributes whose value is None (Flickr omits absent ones)."""
    clean = {k: v for k, v in (attrs or {}).items() if v is not None}
    return Node(
        name=name,
        attrs=clean,
        children=list(children),
        text=None if text is None else str(text),
        arrays=arrays,
    )


def text_node(name: str, value: Scalar) -> Node:
    return Node(name=name, text=str(value))


def is_xml_name(name: str) -> bool:
    return bool(_XML_NAME.match(name)) and not name.lower().startswith("xml")


# ---------------------------------------------------------------- XML


def _xml_text(value: str) -> str:
    return escape(_XML_ILLEGAL.sub("", value))


def _xml_attr(value: Scalar) -> str:
    return escape(_XML_ILLEGAL.sub("", str(value)), {'"': "&quot;"})


def _xml_element(n: Node, depth: int, out: list[str]) -> None:
    pad = "\t" * depth
    attrs = "".join(f' {k}="{_xml_attr(v)}"' for k, v in n.attrs.items())
    if n.text is not None:
        out.append(f"{pad}<{n.name}{attrs}>{_xml_text(n.text)}</{n.name}>")
    elif not n.children:
        out.append(f"{pad}<{n.name}{attrs} />")
    else:
        out.append(f"{pad}<{n.name}{attrs}>")
        for child in n.children:
            _xml_element(child, depth + 1, out)
        out.append(f"{pad}</{n.name}>")


def render_xml(stat: str, payload: list[Node]) -> str:
    """`<?xml ...?><rsp stat="ok">payload</rsp>`, laid out like Flickr's own output."""
    out = ['<?xml version="1.0" encoding="utf-8" ?>']
    if payload:
        out.append(f'<rsp stat="{stat}">')
        for child in payload:
            _xml_element(child, 1, out)
        out.append("</rsp>")
    else:
        out.append(f'<rsp stat="{stat}">\n</rsp>')
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- JSON


def _json_children(children: list[Node], arrays: tuple[str, ...], into: dict[str, Any]) -> None:
    grouped: dict[str, list[Any]] = {}
    for child in children:
        grouped.setdefault(child.name, []).append(to_json(child))
    for name in arrays:
        grouped.setdefault(name, [])
    for name, items in grouped.items():
        into[name] = items if (name in arrays or len(items) > 1) else items[0]


def to_json(n: Node) -> dict[str, Any]:
    out: dict[str, Any] = dict(n.attrs)
    if n.text is not None:
        out["_content"] = n.text
    _json_children(n.children, n.arrays, out)
    return out


def json_document(stat: str, payload: list[Node], arrays: tuple[str, ...] = ()) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    _json_children(payload, arrays, doc)
    doc["stat"] = stat
    return doc


def dump_json(doc: dict[str, Any]) -> str:
    # Flickr escapes "/" as "\/" in its JSON (§6.2); "/" only ever occurs inside strings here.
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")


def jsonp_name(jsoncallback: str | None) -> str:
    if jsoncallback and _CALLBACK_NAME.match(jsoncallback):
        return jsoncallback
    return "jsonFlickrApi"


# ---------------------------------------------------------------- failures


def error_payload(code: int, message: str) -> list[Node]:
    return [node("err", {"code": code, "msg": message})]


def error_json(code: int, message: str) -> dict[str, Any]:
    # Not the generic mapping: Flickr flattens the error and makes `code` a number (§2.3).
    return {"stat": "fail", "code": code, "message": message}
