"""Albums and favourites reads: flickr.photosets.getList/getPhotos/getInfo, favorites.getList."""

from __future__ import annotations

from ..models import Photo, Photoset
from ..rsp import Node, node, text_node
from .base import Call, method
from .filters import media_filter, privacy_filter
from .listing import Page, paginate, parse_extras, photo_item


def _visible_members(call: Call, photoset: Photoset) -> list[Photo]:
    photos = call.state.library.photos
    return [
        photos[pid]
        for pid in photoset.photo_ids
        if pid in photos and call.state.can_see(call.viewer, photos[pid])
    ]


def _photoset(call: Call) -> Photoset:
    photoset = call.state.library.photosets.get(call.arg("photoset_id"))
    if photoset is None:
        raise call.fail(1)
    return photoset


def _set_node(call: Call, photoset: Photoset, members: list[Photo]) -> Node:
    videos = sum(1 for p in members if p.media == "video")
    return node(
        "photoset",
        {
            "id": photoset.id,
            "owner": photoset.owner,
            "primary": photoset.primary,
            "secret": photoset.secret,
            "server": photoset.server,
            "farm": photoset.farm,
            "photos": len(members) - videos,
            "videos": videos,
            "count_views": str(photoset.count_views),
            "count_comments": "0",
            "can_comment": int(call.viewer is not None),
            "date_create": str(photoset.date_create),
            "date_update": str(photoset.date_update),
        },
        [text_node("title", photoset.title), text_node("description", photoset.description)],
    )


@method("flickr.photosets.getList")
def get_list(call: Call) -> list[Node]:
    user = call.user_arg("user_id", 1, default_to_viewer=True)
    library = call.state.library
    shown = []
    for photoset in library.photosets.values():
        if photoset.owner != user.nsid:
            continue
        members = _visible_members(call, photoset)
        # Albums whose photos the caller may not see stay hidden, as on flickr.com.
        if members or call.viewer == user.nsid:
            shown.append(_set_node(call, photoset, members))
    if call.arg("page"):
        page = paginate(call, shown, default=500, maximum=500)
    else:
        # "if page is not provided, all sets are returned" (§6.1)
        page = Page(shown, 1, 1, len(shown), len(shown))
    container = page.container("photosets", page.items, cancreate=int(call.viewer == user.nsid))
    container.arrays = ("photoset",)
    return [container]


@method("flickr.photosets.getInfo")
def get_info(call: Call) -> list[Node]:
    photoset = _photoset(call)
    members = _visible_members(call, photoset)
    owner = call.state.user(photoset.owner)
    info = _set_node(call, photoset, members)
    info.attrs["username"] = owner.username if owner else ""
    info.attrs["count_photos"] = len(members)
    return [info]


@method("flickr.photosets.getPhotos")
def get_photos(call: Call) -> list[Node]:
    photoset = _photoset(call)
    if call.arg("user_id") and call.arg("user_id") != photoset.owner:
        raise call.fail(1)
    members = _visible_members(call, photoset)
    for f in (media_filter(call), privacy_filter(call)):
        if f is not None:
            members = [p for p in members if f(p)]
    page = paginate(call, members, default=500, maximum=500)
    extras = parse_extras(call.arg("extras"))
    owner = call.state.user(photoset.owner)
    items = [
        photo_item(call.state, p, extras, isprimary=str(int(p.id == photoset.primary))) for p in page.items
    ]
    container = page.container(
        "photoset",
        items,
        id=photoset.id,
        primary=photoset.primary,
        owner=photoset.owner,
        ownername=owner.username if owner else "",
        title=photoset.title,
    )
    # Real responses carry both spellings (2017 capture, §6.2).
    container.attrs["per_page"] = page.perpage
    return [container]


@method("flickr.favorites.getList")
def favorites_get_list(call: Call) -> list[Node]:
    user = call.user_arg("user_id", 1, default_to_viewer=True)
    state = call.state
    lower = call.int_arg("min_fave_date", 0)
    upper = call.int_arg("max_fave_date", 0)
    faves = [
        (state.library.photos[pid], faved)
        for pid, faved in state.library.favorites.get(user.nsid, {}).items()
        if pid in state.library.photos
        and state.can_see(call.viewer, state.library.photos[pid])
        and faved >= lower
        and (not upper or faved <= upper)
    ]
    faves.sort(key=lambda pair: (pair[1], int(pair[0].id)), reverse=True)
    page = paginate(call, faves, default=100, maximum=500)
    extras = parse_extras(call.arg("extras"))
    items = [photo_item(state, p, extras, date_faved=str(faved)) for p, faved in page.items]
    return [page.container("photos", items)]
