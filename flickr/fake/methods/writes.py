"""Writes: photos.setMeta, addTags, delete; photosets.create, addPhoto (FLICKR-API.md §5.3).

Each changes the library, so a later read sees it. Only the owner may change a photo; to
anyone else it is "not found", as on Flickr.
"""

from __future__ import annotations

from ..models import Photoset, normalise_tag, parse_tags
from ..rsp import Node, node
from ..sizes import WEB_HOST, person_path
from .base import Call, method

MAX_TAGS = 75  # Flickr's per-photo tag limit
MAX_PHOTOS_IN_SET = 3000


# Today's Flickr needs only photo_id; title and description are each optional.
@method("flickr.photos.setMeta", requires=("photo_id",))
def set_meta(call: Call) -> list[Node]:
    photo = call.own_photo()
    if "title" in call.args:
        photo.title = call.args["title"]
    if "description" in call.args:
        photo.description = call.args["description"]
    photo.last_update = int(call.state.clock())
    return []


@method("flickr.photos.addTags")
def add_tags(call: Call) -> list[Node]:
    photo = call.own_photo()
    have = set(photo.normalised_tags)
    new = []
    for raw in parse_tags(call.args.get("tags", "")):
        clean = normalise_tag(raw)
        # A tag the photo already has is ignored rather than an error (§5.2).
        if clean and clean not in have:
            have.add(clean)
            new.append(raw)
    if len(photo.tags) + len(new) > MAX_TAGS:
        # "...the whole request is ignored" (the method's own error text).
        raise call.fail(2)
    photo.tags.extend(new)
    if new:
        photo.last_update = int(call.state.clock())
    return []


@method("flickr.photos.delete")
def delete(call: Call) -> list[Node]:
    photo = call.own_photo()
    library = call.state.library
    del library.photos[photo.id]
    for faves in library.favorites.values():
        faves.pop(photo.id, None)
    known = call.state.hashes.get(photo.owner, {})
    if photo.sha1 and known.get(photo.sha1) == photo.id:
        del known[photo.sha1]
        # Another copy of the same file, uploaded without dedup_check, now stands for it.
        twins = (p for p in library.photos.values() if (p.sha1, p.owner) == (photo.sha1, photo.owner))
        if (twin := next(twins, None)) is not None:
            known[photo.sha1] = twin.id
    for set_id, photoset in list(library.photosets.items()):
        if photo.id not in photoset.photo_ids:
            continue
        photoset.photo_ids.remove(photo.id)
        if not photoset.photo_ids:
            del library.photosets[set_id]  # Flickr removes an album with its last photo
        elif photoset.primary == photo.id:
            photoset.primary = photoset.photo_ids[0]
    return []


@method("flickr.photosets.create")
def create_set(call: Call) -> list[Node]:
    if not call.arg("title"):
        raise call.fail(1)
    primary = call.own_photo("primary_photo_id", 2)
    state = call.state
    now = int(state.clock())
    set_id = state.new_set_id()
    state.library.photosets[set_id] = Photoset(
        id=set_id,
        owner=primary.owner,
        title=call.arg("title"),
        description=call.arg("description"),
        primary=primary.id,
        photo_ids=[primary.id],
        secret=primary.secret,
        server=primary.server,
        farm=primary.farm,
        date_create=now,
        date_update=now,
    )
    owner = state.user(primary.owner)
    url = f"{WEB_HOST}/photos/{person_path(owner, primary.owner)}/sets/{set_id}/"
    return [node("photoset", {"id": set_id, "url": url})]


@method("flickr.photosets.addPhoto")
def add_photo(call: Call) -> list[Node]:
    photoset = call.state.library.photosets.get(call.arg("photoset_id"))
    if photoset is None or photoset.owner != call.viewer:
        raise call.fail(1)
    photo = call.own_photo("photo_id", 2)
    if photo.id in photoset.photo_ids:
        # Converging write: a retry after a lost answer lands here (§5.2).
        raise call.fail(3)
    if len(photoset.photo_ids) >= MAX_PHOTOS_IN_SET:
        raise call.fail(10)
    photoset.photo_ids.append(photo.id)
    photoset.date_update = int(call.state.clock())
    return []
