"""flickr.people.*: getInfo, getPhotos, getPublicPhotos, findByUsername."""

from __future__ import annotations

import hashlib

from ..models import User
from ..rsp import Attrs, Node, node, text_node
from ..sizes import WEB_HOST, person_path
from .base import Call, method
from .filters import date_filter, media_filter, privacy_filter
from .listing import paginate, parse_extras, photo_item


@method("flickr.people.findByUsername")
def find_by_username(call: Call) -> list[Node]:
    user = call.state.user_by_name(call.arg("username"))
    if user is None:
        raise call.fail(1)
    return [node("user", {"id": user.nsid, "nsid": user.nsid}, [text_node("username", user.username)])]


def _photos_summary(call: Call, user: User) -> Node:
    own = [p for p in call.state.library.photos.values() if p.owner == user.nsid]
    first_upload = min((p.date_upload for p in own), default=0)
    first_taken = min((p.date_taken for p in own), default="")
    return node(
        "photos",
        children=[
            text_node("firstdatetaken", first_taken),
            text_node("firstdate", str(first_upload)),
            text_node("count", len(own)),
        ],
    )


# people.getInfo takes user_id *or* url today; the 2015 catalog marks both required.
@method("flickr.people.getInfo", requires=("user_id",))
def get_info(call: Call) -> list[Node]:
    user = call.user_arg("user_id", 1)
    path = person_path(user, user.nsid)
    mbox = hashlib.sha1(f"mailto:{user.username}@example.org".encode(), usedforsecurity=False).hexdigest()
    attrs: Attrs = {
        "id": user.nsid,
        "nsid": user.nsid,
        "ispro": int(user.ispro),
        "is_deleted": 0,
        "iconserver": user.iconserver,
        "iconfarm": 66,
        "path_alias": user.path_alias or "",
    }
    children = [
        text_node("username", user.username),
        text_node("realname", user.fullname),
        text_node("location", user.location),
        text_node("description", user.description),
        text_node("mbox_sha1sum", mbox),
        text_node("photosurl", f"{WEB_HOST}/photos/{path}/"),
        text_node("profileurl", f"{WEB_HOST}/people/{path}/"),
        text_node("mobileurl", f"https://m.flickr.com/photostream.gne?id={user.nsid.split('@')[0]}"),
        _photos_summary(call, user),
    ]
    return [node("person", attrs, children)]


def _user_photos(call: Call, user: User, *, public_only: bool) -> list[Node]:
    state, viewer = call.state, call.viewer
    filters = [f for f in (date_filter(call), media_filter(call), privacy_filter(call)) if f is not None]
    photos = sorted(
        (
            p
            for p in state.library.photos.values()
            if p.owner == user.nsid
            and (p.ispublic if public_only else state.can_see(viewer, p))
            and all(f(p) for f in filters)
        ),
        key=lambda p: (p.date_upload, int(p.id)),
        reverse=True,
    )
    page = paginate(call, photos, default=100, maximum=500)
    extras = parse_extras(call.arg("extras"))
    return [page.container("photos", [photo_item(state, p, extras) for p in page.items])]


@method("flickr.people.getPhotos")
def get_photos(call: Call) -> list[Node]:
    # Private and contacts-only photos only show up for a signed call by someone allowed.
    return _user_photos(call, call.user_arg("user_id", 2), public_only=False)


@method("flickr.people.getPublicPhotos")
def get_public_photos(call: Call) -> list[Node]:
    return _user_photos(call, call.user_arg("user_id", 1), public_only=True)
