"""Photo sizes and image URLs (FLICKR-API.md §6.3, Flickr's misc.urls page)."""

from __future__ import annotations

from dataclasses import dataclass

from .library import size_secret
from .models import Photo, User


@dataclass(frozen=True)
class SizeSpec:
    label: str
    key: str  # the extras name: url_<key>; also the /sizes/<key>/ page
    suffix: str  # the file name suffix: <id>_<secret>_<suffix>.jpg
    edge: int | None  # longest edge; None for the original
    square: bool = False
    own_secret: bool = False  # sizes from 1600 up have their own secret


SIZES = (
    SizeSpec("Square", "sq", "s", 75, square=True),
    SizeSpec("Large Square", "q", "q", 150, square=True),
    SizeSpec("Thumbnail", "t", "t", 100),
    SizeSpec("Small", "s", "m", 240),
    SizeSpec("Small 320", "n", "n", 320),
    SizeSpec("Small 400", "w", "w", 400),
    SizeSpec("Medium", "m", "", 500),
    SizeSpec("Medium 640", "z", "z", 640),
    SizeSpec("Medium 800", "c", "c", 800),
    SizeSpec("Large", "l", "b", 1024),
    SizeSpec("Large 1600", "h", "h", 1600, own_secret=True),
    SizeSpec("Large 2048", "k", "k", 2048, own_secret=True),
    SizeSpec("X-Large 3K", "3k", "3k", 3072, own_secret=True),
    SizeSpec("X-Large 4K", "4k", "4k", 4096, own_secret=True),
    SizeSpec("X-Large 5K", "5k", "5k", 5120, own_secret=True),
    SizeSpec("X-Large 6K", "6k", "6k", 6144, own_secret=True),
    SizeSpec("Original", "o", "o", None),
)
SIZE_KEYS = {s.key for s in SIZES}
STATIC_HOST = "https://live.staticflickr.com"
WEB_HOST = "https://www.flickr.com"


@dataclass(frozen=True)
class Size:
    spec: SizeSpec
    width: int
    height: int
    source: str
    url: str


def person_path(user: User | None, nsid: str) -> str:
    return user.path_alias if user and user.path_alias else nsid


def photo_page(photo: Photo, owner: User | None) -> str:
    return f"{WEB_HOST}/photos/{person_path(owner, photo.owner)}/{photo.id}/"


def _source(photo: Photo, spec: SizeSpec) -> str:
    base = f"{STATIC_HOST}/{photo.server}/{photo.id}"
    if spec.edge is None:
        return f"{base}_{photo.originalsecret}_o.{photo.originalformat}"
    if spec.own_secret:
        return f"{base}_{size_secret(photo.secret, spec.suffix)}_{spec.suffix}.jpg"
    if not spec.suffix:
        return f"{base}_{photo.secret}.jpg"
    return f"{base}_{photo.secret}_{spec.suffix}.jpg"


def _dims(photo: Photo, spec: SizeSpec) -> tuple[int, int] | None:
    w, h = photo.width, photo.height
    if spec.edge is None:
        return w, h
    if spec.square:
        return spec.edge, spec.edge
    longest = max(w, h)
    if spec.edge >= longest:
        return None  # Flickr offers no size at or above the original's; Original covers it
    scale = spec.edge / longest
    return (spec.edge, max(1, round(h * scale))) if w >= h else (max(1, round(w * scale)), spec.edge)


def available_sizes(photo: Photo, owner: User | None) -> list[Size]:
    sizes = []
    for spec in SIZES:
        dims = _dims(photo, spec)
        if dims is None:
            continue
        page = f"{photo_page(photo, owner)}sizes/{spec.key}/"
        sizes.append(Size(spec, dims[0], dims[1], _source(photo, spec), page))
    return sizes
