"""Photo reads: flickr.photos.search, getRecent, getInfo, getSizes, getExif."""

from __future__ import annotations

import zlib
from collections.abc import Callable

from ..models import Photo, normalise_tag
from ..rsp import Attrs, Node, node, text_node
from ..sizes import available_sizes, photo_page
from .base import Call, method
from .filters import (
    date_filter,
    geo_filter,
    media_filter,
    privacy_filter,
    tag_filter,
    text_filter,
)
from .listing import paginate, parse_extras, photo_item, taken_ts

# Any one of these makes a search "parameterful" (§5.2); license, sort, extras do not.
LIMITING_ARGS = (
    "user_id",
    "tags",
    "text",
    "min_upload_date",
    "max_upload_date",
    "min_taken_date",
    "max_taken_date",
    "bbox",
    "has_geo",
    "group_id",
    "place_id",
    "woe_id",
    "lat",
    "lon",
    "machine_tags",
    "contacts",
    "camera",
    "is_commons",
    "in_gallery",
    "is_getty",
)
SORTS: dict[str, tuple[Callable[[Photo], float], bool]] = {
    "date-posted-desc": (lambda p: p.date_upload, True),
    "date-posted-asc": (lambda p: p.date_upload, False),
    "date-taken-desc": (taken_ts, True),
    "date-taken-asc": (taken_ts, False),
    "interestingness-desc": (lambda p: p.views, True),
    "interestingness-asc": (lambda p: p.views, False),
    "relevance": (lambda p: p.date_upload, True),
}
PARAMETERLESS = "Parameterless searches have been disabled. Please use flickr.photos.getRecent instead."


@method("flickr.photos.search")
def search(call: Call) -> list[Node]:
    if not any(call.arg(name) for name in LIMITING_ARGS):
        raise call.fail(3, PARAMETERLESS)
    owner = call.user_arg("user_id", 2) if call.arg("user_id") else None
    state, viewer = call.state, call.viewer
    filters = [
        f
        for f in (
            tag_filter(call),
            text_filter(call),
            date_filter(call),
            geo_filter(call),
            media_filter(call),
            privacy_filter(call),
        )
        if f is not None
    ]
    found = [
        p
        for p in state.library.photos.values()
        if (owner is None or p.owner == owner.nsid)
        # hidden=2 keeps a photo out of public searches, but not out of its owner's (§3.1)
        and (owner is not None or p.hidden != 2 or p.owner == viewer)
        and state.can_see(viewer, p)
        and all(f(p) for f in filters)
    ]
    key, descending = SORTS.get(call.arg("sort").lower(), SORTS["date-posted-desc"])
    found.sort(key=lambda p: (key(p), int(p.id)), reverse=descending)
    page = paginate(call, found, default=100, maximum=500, cap=call.options.get("search_cap"))
    extras = parse_extras(call.arg("extras"))
    return [page.container("photos", [photo_item(state, p, extras) for p in page.items])]


@method("flickr.photos.getRecent")
def get_recent(call: Call) -> list[Node]:
    state = call.state
    recent = sorted(
        (p for p in state.library.photos.values() if p.ispublic and p.hidden != 2),
        key=lambda p: (p.date_upload, int(p.id)),
        reverse=True,
    )
    page = paginate(call, recent, default=100, maximum=500)
    extras = parse_extras(call.arg("extras"))
    return [page.container("photos", [photo_item(state, p, extras) for p in page.items])]


def _tag_nodes(photo: Photo, author: str, authorname: str) -> list[Node]:
    numeric = author.split("@")[0]
    return [
        node(
            "tag",
            {
                "id": f"{numeric}-{photo.id}-{zlib.crc32(raw.encode()) % 10**8}",
                "author": author,
                "authorname": authorname,
                "raw": raw,
                "machine_tag": 0,
            },
            text=normalise_tag(raw),
        )
        for raw in photo.tags
    ]


@method("flickr.photos.getInfo")
def get_info(call: Call) -> list[Node]:
    photo = call.visible_photo()
    state = call.state
    owner = state.user(photo.owner)
    assert owner is not None
    is_owner = call.viewer == photo.owner
    faved = photo.id in state.library.favorites.get(call.viewer or "", {})
    children = [
        node(
            "owner",
            {
                "nsid": owner.nsid,
                "username": owner.username,
                "realname": owner.fullname,
                "location": owner.location,
                "iconserver": owner.iconserver,
                "iconfarm": 66,
                "path_alias": owner.path_alias or "",
            },
        ),
        text_node("title", photo.title),
        text_node("description", photo.description),
        node(
            "visibility",
            {"ispublic": photo.ispublic, "isfriend": photo.isfriend, "isfamily": photo.isfamily},
        ),
        node(
            "dates",
            {
                "posted": str(photo.date_upload),
                "taken": photo.date_taken,
                "takengranularity": 0,
                "takenunknown": str(photo.taken_unknown),
                "lastupdate": str(photo.last_update),
            },
        ),
    ]
    if is_owner:
        children.append(node("permissions", {"permcomment": 3, "permaddmeta": 2}))
    children += [
        node("editability", {"cancomment": int(call.viewer is not None), "canaddmeta": int(is_owner)}),
        node("publiceditability", {"cancomment": 1, "canaddmeta": 0}),
        node("usage", {"candownload": 1, "canblog": int(is_owner), "canprint": 0, "canshare": 1}),
        text_node("comments", 0),
        node("notes", arrays=("note",)),
        node("people", {"haspeople": 0}),
        node("tags", children=_tag_nodes(photo, owner.nsid, owner.username), arrays=("tag",)),
    ]
    if photo.geo is not None:
        lat, lon = photo.geo
        children.append(node("location", {"latitude": str(lat), "longitude": str(lon), "accuracy": 16}))
    children.append(
        node(
            "urls",
            children=[node("url", {"type": "photopage"}, text=photo_page(photo, owner))],
            arrays=("url",),
        )
    )
    attrs: Attrs = {
        "id": photo.id,
        "secret": photo.secret,
        "server": photo.server,
        "farm": photo.farm,
        "dateuploaded": str(photo.date_upload),
        "isfavorite": int(faved),
        "license": photo.license,
        "safety_level": str(photo.safety_level),
        "rotation": 0,
        "originalsecret": photo.originalsecret,
        "originalformat": photo.originalformat,
        "views": str(photo.views),
        "media": photo.media,
    }
    return [node("photo", attrs, children)]


@method("flickr.photos.getSizes")
def get_sizes(call: Call) -> list[Node]:
    photo = call.visible_photo()
    owner = call.state.user(photo.owner)
    mine = int(call.viewer == photo.owner)
    sizes = [
        node(
            "size",
            {
                "label": s.spec.label,
                "width": s.width,
                "height": s.height,
                "source": s.source,
                "url": s.url,
                "media": photo.media,
            },
        )
        for s in available_sizes(photo, owner)
    ]
    if photo.media == "video":
        page = photo_page(photo, owner)
        for label, edge in (("Video Player", 640), ("Site MP4", 640), ("Video Original", None)):
            w, h = (photo.width, photo.height) if edge is None else (edge, edge * 9 // 16)
            source = f"{page}play/{label.split()[0].lower()}/{photo.secret}/"
            sizes.append(
                node(
                    "size",
                    {
                        "label": label,
                        "width": w,
                        "height": h,
                        "source": source,
                        "url": page,
                        "media": "video",
                    },
                )
            )
    attrs = {"canblog": mine, "canprint": mine, "candownload": 1}
    return [node("sizes", attrs, sizes, arrays=("size",))]


@method("flickr.photos.getExif")
def get_exif(call: Call) -> list[Node]:
    photo = call.visible_photo()
    tags = [
        node(
            "exif",
            {"tagspace": t.tagspace, "tagspaceid": t.tagspaceid, "tag": t.tag, "label": t.label},
            [text_node("raw", t.raw)] + ([text_node("clean", t.clean)] if t.clean else []),
        )
        for t in photo.exif
    ]
    attrs: Attrs = {
        "id": photo.id,
        "secret": photo.secret,
        "server": photo.server,
        "farm": photo.farm,
        "camera": photo.camera,
    }
    return [node("photo", attrs, tags, arrays=("exif",))]
