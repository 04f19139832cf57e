"""Shared pieces of every photo list: paging, extras, dates and the `<photo>` item."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from ..models import Photo
from ..rsp import Node, node, text_node
from ..sizes import SIZE_KEYS, available_sizes
from ..state import SandboxState
from .base import Call

T = TypeVar("T")

# Extras Flickr accepts on photo lists (§6.3), newer size names included.
KNOWN_EXTRAS = {
    "description",
    "license",
    "date_upload",
    "date_taken",
    "owner_name",
    "icon_server",
    "original_format",
    "last_update",
    "geo",
    "tags",
    "machine_tags",
    "o_dims",
    "views",
    "media",
    "path_alias",
} | {f"url_{k}" for k in SIZE_KEYS}


@dataclass
class Page:
    items: list
    page: int
    pages: int
    perpage: int
    total: int

    def container(self, name: str, children: list[Node], **attrs: str | int | None) -> Node:
        # page/pages/perpage as numbers and total as a string: the convention FLICKR-API.md
        # §6.2 picks from the captured responses.
        return node(
            name,
            {
                **attrs,
                "page": self.page,
                "pages": self.pages,
                "perpage": self.perpage,
                "total": str(self.total),
            },
            children,
            arrays=("photo",),
        )


def paginate(call: Call, items: Sequence[T], *, default: int, maximum: int, cap: int | None = None) -> Page:
    """Flickr-style paging: 1-based, per_page clamped to the method's maximum (§6.1)."""
    per_page = call.int_arg("per_page", default)
    per_page = default if per_page < 1 else min(per_page, maximum)
    page = max(call.int_arg("page", 1), 1)
    total = len(items)
    offset = (page - 1) * per_page
    if cap is not None and offset >= cap:
        # photos.search serves only the first `cap` (4,000) results; deeper pages repeat the
        # last reachable one (§5.2, §6.1) while the totals still tell the truth.
        offset = max(0, ((min(cap, total) - 1) // per_page) * per_page)
    return Page(
        items=list(items[offset : offset + per_page]),
        page=page,
        pages=math.ceil(total / per_page) if total else 0,
        perpage=per_page,
        total=total,
    )


def parse_extras(raw: str) -> list[str]:
    # Comma-delimited, whitespace tolerated ("original_format, owner_name"); unknown ignored.
    seen: list[str] = []
    for part in raw.split(","):
        name = part.strip().lower()
        if name in KNOWN_EXTRAS and name not in seen:
            seen.append(name)
    return seen


def parse_date(value: str) -> float | None:
    """A unix timestamp or a MySQL datetime ("2019-05-01 10:00:00" or "2019-05-01")."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def taken_ts(photo: Photo) -> float:
    stamp = datetime.strptime(photo.date_taken, "%Y-%m-%d %H:%M:%S")
    return stamp.replace(tzinfo=UTC).timestamp()


def privacy_level(photo: Photo) -> int:
    """privacy_filter's scale: 1 public, 2 friends, 3 family, 4 friends & family, 5 private."""
    if photo.ispublic:
        return 1
    if photo.isfriend and photo.isfamily:
        return 4
    if photo.isfriend:
        return 2
    if photo.isfamily:
        return 3
    return 5


def _extra_attrs(state: SandboxState, photo: Photo, extra: str) -> dict[str, str | int]:
    owner = state.user(photo.owner)
    if extra == "license":
        return {"license": photo.license}
    if extra == "date_upload":
        return {"dateupload": str(photo.date_upload)}
    if extra == "date_taken":
        return {
            "datetaken": photo.date_taken,
            "datetakengranularity": 0,
            "datetakenunknown": str(photo.taken_unknown),
        }
    if extra == "owner_name":
        return {"ownername": owner.username if owner else ""}
    if extra == "icon_server":
        return {"iconserver": owner.iconserver if owner else "0", "iconfarm": 66}
    if extra == "original_format":
        return {"originalsecret": photo.originalsecret, "originalformat": photo.originalformat}
    if extra == "last_update":
        return {"lastupdate": str(photo.last_update)}
    if extra == "geo":
        lat, lon = photo.geo or (0, 0)
        return {
            "latitude": str(lat),
            "longitude": str(lon),
            "accuracy": 16 if photo.geo else 0,
            "context": 0,
        }
    if extra == "tags":
        return {"tags": " ".join(photo.normalised_tags)}
    if extra == "machine_tags":
        return {"machine_tags": ""}
    if extra == "o_dims":
        return {"o_width": str(photo.width), "o_height": str(photo.height)}
    if extra == "views":
        return {"views": str(photo.views)}
    if extra == "media":
        return {"media": photo.media, "media_status": "ready"}
    if extra == "path_alias":
        return {"pathalias": (owner.path_alias or "") if owner else ""}
    return {}


def photo_item(state: SandboxState, photo: Photo, extras: list[str], **more: str | int | None) -> Node:
    """One `<photo>` of a list: the fixed fields, then what `extras` asked for (§6.2, §6.3)."""
    attrs: dict[str, str | int | None] = {
        "id": photo.id,
        "owner": photo.owner,
        "secret": photo.secret,
        "server": photo.server,
        "farm": photo.farm,
        "title": photo.title,
        "ispublic": photo.ispublic,
        "isfriend": photo.isfriend,
        "isfamily": photo.isfamily,
        **more,
    }
    for extra in extras:
        attrs.update(_extra_attrs(state, photo, extra))
    wanted = {e[4:] for e in extras if e.startswith("url_")}
    if wanted:
        for size in available_sizes(photo, state.user(photo.owner)):
            if size.spec.key in wanted:
                key = size.spec.key
                attrs[f"url_{key}"] = size.source
                attrs[f"height_{key}"] = size.height
                attrs[f"width_{key}"] = size.width
    children = [text_node("description", photo.description)] if "description" in extras else []
    return node("photo", attrs, children)
