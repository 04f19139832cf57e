"""Photo list filters shared by photos.search and people.getPhotos (FLICKR-API.md §5.3)."""

from __future__ import annotations

from collections.abc import Callable

from ..models import Photo, normalise_tag
from .base import Call
from .listing import parse_date, privacy_level, taken_ts

DATE_ARGS = ("min_upload_date", "max_upload_date", "min_taken_date", "max_taken_date")
MAX_TAGS_ALL = 20
Filter = Callable[[Photo], bool]


def _terms(raw: str, separator: str | None) -> tuple[list[str], list[str]]:
    """Split tags/text into wanted and excluded ("-term") normalised terms."""
    wanted, excluded = [], []
    for part in raw.split(separator):
        term = part.strip()
        if term.startswith("-") and len(term) > 1:
            excluded.append(normalise_tag(term[1:]))
        elif term:
            wanted.append(normalise_tag(term))
    return [t for t in wanted if t], [t for t in excluded if t]


def tag_filter(call: Call) -> Filter | None:
    raw = call.arg("tags")
    if not raw:
        return None
    wanted, excluded = _terms(raw, ",")
    match_all = call.arg("tag_mode").lower() == "all"
    if match_all and len(wanted) > MAX_TAGS_ALL:
        raise call.fail(1)

    def keep(photo: Photo) -> bool:
        tags = set(photo.normalised_tags)
        if tags & set(excluded):
            return False
        if not wanted:
            return True
        return all(t in tags for t in wanted) if match_all else any(t in tags for t in wanted)

    return keep


def text_filter(call: Call) -> Filter | None:
    raw = call.arg("text")
    if not raw:
        return None
    wanted, excluded = _terms(raw, None)

    def keep(photo: Photo) -> bool:
        haystack = normalise_tag(" ".join([photo.title, photo.description, *photo.tags]))
        return all(t in haystack for t in wanted) and not any(t in haystack for t in excluded)

    return keep


def date_filter(call: Call) -> Filter:
    bounds = {name: parse_date(call.arg(name)) for name in DATE_ARGS}

    def keep(photo: Photo) -> bool:
        taken = taken_ts(photo)
        checks = (
            (bounds["min_upload_date"], photo.date_upload, 1),
            (bounds["max_upload_date"], photo.date_upload, -1),
            (bounds["min_taken_date"], taken, 1),
            (bounds["max_taken_date"], taken, -1),
        )
        return all(b is None or (v - b) * sign >= 0 for b, v, sign in checks)

    return keep


def geo_filter(call: Call) -> Filter | None:
    has_geo, bbox = call.arg("has_geo"), call.arg("bbox")
    if not has_geo and not bbox:
        return None
    box: list[float] | None = None
    if bbox:
        try:
            box = [float(v) for v in bbox.split(",")]
        except ValueError:
            box = None
        if box is None or len(box) != 4:
            raise call.fail(18)

    def keep(photo: Photo) -> bool:
        if has_geo and (photo.geo is not None) != (has_geo == "1"):
            return False
        if box is not None:
            if photo.geo is None:
                return False
            lat, lon = photo.geo
            return box[0] <= lon <= box[2] and box[1] <= lat <= box[3]
        return True

    return keep


def media_filter(call: Call) -> Filter | None:
    media = call.arg("media").lower()
    if media == "photos":
        return lambda p: p.media == "photo"
    if media == "videos":
        return lambda p: p.media == "video"
    return None


def privacy_filter(call: Call) -> Filter | None:
    level = call.int_arg("privacy_filter", 0)
    if not level or call.viewer is None:
        return None
    # "This only applies when making an authenticated call to view photos you own."
    return lambda p: p.owner != call.viewer or privacy_level(p) == level
