"""What the sandbox remembers: people, their photo libraries, apps and tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Flickr keeps a tag's "raw" spelling and matches on a normalised form: lower case, with
# spaces and punctuation removed ("Central Station" -> "centralstation").
_TAG_JUNK = re.compile(r"[\W_]+", re.UNICODE)


_TAG_TOKEN = re.compile(r'"([^"]*)"|(\S+)')


def normalise_tag(raw: str) -> str:
    return _TAG_JUNK.sub("", raw.lower())


def parse_tags(raw: str) -> list[str]:
    """Space-separated tags, multi-word ones in double quotes: `a "central station" b`."""
    found = (quoted or bare for quoted, bare in _TAG_TOKEN.findall(raw))
    return [tag.strip() for tag in found if tag.strip()]


@dataclass
class User:
    nsid: str
    username: str
    fullname: str
    location: str
    ispro: bool
    iconserver: str
    path_alias: str | None = None
    description: str = ""
    friends: set[str] = field(default_factory=set)
    family: set[str] = field(default_factory=set)
    upload_limit: int = 1000

    @property
    def realname(self) -> str:
        return self.fullname

    def __getitem__(self, key: str) -> Any:
        # Callers were promised "a list of dicts or objects": user["nsid"] works like user.nsid.
        return getattr(self, key)


@dataclass
class ExifTag:
    tagspace: str
    tagspaceid: int
    tag: str
    label: str
    raw: str
    clean: str | None = None


@dataclass
class Photo:
    id: str
    owner: str
    secret: str
    server: str
    farm: int
    originalsecret: str
    originalformat: str
    title: str
    description: str
    tags: list[str]
    date_taken: str  # "YYYY-MM-DD HH:MM:SS", Flickr's datetaken
    date_upload: int  # unix time
    last_update: int
    ispublic: int
    isfriend: int
    isfamily: int
    width: int
    height: int
    license: str = "0"
    safety_level: int = 0
    media: str = "photo"
    views: int = 0
    taken_unknown: int = 0
    exif: list[ExifTag] = field(default_factory=list)
    camera: str = ""
    geo: tuple[float, float] | None = None
    sha1: str | None = None
    size_bytes: int = 0
    content_type: int = 1
    hidden: int = 1

    @property
    def normalised_tags(self) -> list[str]:
        return [normalise_tag(t) for t in self.tags]

    @property
    def is_private(self) -> bool:
        return not (self.ispublic or self.isfriend or self.isfamily)


@dataclass
class Photoset:
    id: str
    owner: str
    title: str
    description: str
    primary: str
    photo_ids: list[str]
    secret: str
    server: str
    farm: int
    date_create: int
    date_update: int
    count_views: int = 0


@dataclass
class Consumer:
    key: str
    secret: str
    name: str = "An app"
    expired: bool = False


@dataclass
class RequestToken:
    token: str
    secret: str
    consumer_key: str
    callback: str
    created: float
    perms: str | None = None
    nsid: str | None = None
    verifier: str | None = None
    denied: bool = False
    used: bool = False


@dataclass
class AccessToken:
    token: str
    secret: str
    consumer_key: str
    nsid: str
    perms: str
    revoked: bool = False


@dataclass
class Ticket:
    id: str
    photo_id: str | None
    complete: int  # 0 still processing, 1 done, 2 failed (§3.4)
    created: float
