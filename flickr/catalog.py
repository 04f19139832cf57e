"""The Flickr method catalog: which permission each method needs and whether it only reads.

The data is `flickr/methods.json`, generated from Flickr's own reflection
(flickr.reflection.getMethods / getMethodInfo) by `manage.py refresh_flickr_catalog` and kept in
the repository; the committed file was generated from the sandbox, which serves Flickr's real
reflection output captured in 2015 (shared/FLICKR-API.md §5.4). A method that is not listed is
treated as a write: never cached, never retried blindly — the safe mistake to make. The rules
below (what is never cached, which writes are safe to repeat) are the hub's own policy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

CATALOG_PATH: Final = Path(__file__).with_name("methods.json")
# Flickr's requiredperms numbers.
PERMS_BY_LEVEL: Final = {0: "none", 1: "read", 2: "write", 3: "delete"}


def _load() -> dict[str, str]:
    try:
        methods = json.loads(CATALOG_PATH.read_text())["methods"]
    except FileNotFoundError:
        return {}
    return {name.removeprefix("flickr."): entry["perms"] for name, entry in methods.items()}


# requiredperms of every known method, without the `flickr.` prefix.
_PERMS: Final[dict[str, str]] = _load()

# State-changing methods that need only read permission (FLICKR-API.md §5.2): never cached.
_WRITES_DESPITE_PERMS: Final = frozenset({"push.subscribe", "push.unsubscribe"})
# Token probes and polls: read-only, but their answer is about now, so never cached.
_NEVER_CACHED: Final = frozenset(
    {"test.echo", "test.login", "test.null", "auth.oauth.checkToken", "photos.upload.checkTickets"}
)
# Writes whose repetition changes nothing (they set a value rather than add one): after an
# ambiguous failure — sent, no answer — they are retried like reads instead of failing with
# "outcome unknown".
_IDEMPOTENT_WRITES: Final = frozenset(
    {
        "photos.setMeta",
        "photos.setDates",
        "photos.setPerms",
        "photos.setSafetyLevel",
        "photos.setContentType",
        "photos.setTags",
        "photos.geo.setLocation",
        "photos.geo.setPerms",
        "photos.geo.setContext",
        "photos.geo.removeLocation",
        "photos.licenses.setLicense",
        "photosets.editMeta",
        "photosets.editPhotos",
        "photosets.setPrimaryPhoto",
        "photosets.reorderPhotos",
        "photosets.orderSets",
    }
)
PERMISSION_LADDER: Final = ("none", "read", "write", "delete")


def _short(method: str) -> str:
    return method.removeprefix("flickr.")


def required_perms(method: str) -> str | None:
    """The permission Flickr requires for a method, or None when the method is not catalogued."""
    return _PERMS.get(_short(method))


def is_read_only(method: str) -> bool:
    """True for methods that change nothing on Flickr: safe to retry and to cache."""
    short = _short(method)
    perms = _PERMS.get(short)
    return perms in ("none", "read") and short not in _WRITES_DESPITE_PERMS


def is_safe_to_repeat(method: str) -> bool:
    """True when sending the call twice has the same effect as once: reads, and writes that
    set a value. An ambiguous failure of such a call is retried."""
    return is_read_only(method) or _short(method) in _IDEMPOTENT_WRITES


def is_cacheable(method: str) -> bool:
    return is_read_only(method) and _short(method) not in _NEVER_CACHED


def perms_allow(granted: str, method: str) -> bool:
    """Whether a token granted `granted` may call `method` (read < write < delete)."""
    needed = required_perms(method) or "write"
    return PERMISSION_LADDER.index(granted) >= PERMISSION_LADDER.index(needed)
