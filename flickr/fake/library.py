"""The seeded world: a few people, each with a photo library, albums and favourites.

Everything comes from one `random.Random(seed)`, so the same seed gives the same NSIDs,
photo ids, titles and privacy settings on every run (tests and benchmarks rely on it).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .models import ExifTag, Photo, Photoset, User

# The cast. NSIDs are drawn from the seed; names stay put so people can recognise them.
PEOPLE = (
    # username, full name, location, pro, path alias
    ("aurora_lens", "Aurora Lindqvist", "Oslo, Norway", True, "auroralens"),
    ("mbeckett", "Miles Beckett", "Bristol, UK", False, None),
    ("kumiko.t", "Kumiko Tanaka", "Kyoto, Japan", True, "kumikot"),
    ("deltaforge", "Rafael Duarte", "Lisbon, Portugal", False, None),
)
# Home coordinates, for geotagged photos near where each person lives.
HOMES = ((59.91, 10.75), (51.45, -2.58), (35.01, 135.77), (38.72, -9.14))

SUBJECTS = (
    "harbour",
    "old bridge",
    "market",
    "cathedral",
    "fjord",
    "tram",
    "lighthouse",
    "forest path",
    "rooftops",
    "station",
    "garden",
    "skyline",
    "ferry",
    "mountain hut",
    "river",
)
MOODS = (
    "Morning fog over the",
    "Last light on the",
    "Rain at the",
    "Winter by the",
    "Quiet hour at the",
    "Blue hour at the",
    "Snow on the",
    "Summer evening at the",
)
TAGS = (
    "sunset",
    "fog",
    "street",
    "film",
    "bw",
    "night",
    "travel",
    "nature",
    "city",
    "snow",
    "portrait",
    "architecture",
    "water",
    "longexposure",
    "Central Station",
    "35mm",
    "autumn",
    "spring",
)
CAMERAS = (
    ("FUJIFILM", "X-T3", "XF23mmF2 R WR"),
    ("Canon", "Canon EOS 5D Mark IV", "EF24-70mm f/2.8L II USM"),
    ("SONY", "ILCE-7M3", "FE 35mm F1.8"),
    ("Apple", "iPhone 13 Pro", "iPhone 13 Pro back triple camera 5.7mm f/1.5"),
    ("NIKON CORPORATION", "NIKON Z 6", "NIKKOR Z 50mm f/1.8 S"),
)
DIMENSIONS = ((6000, 4000), (4000, 6000), (4032, 3024), (3024, 4032), (5472, 3648), (2048, 2048))
EXPOSURES = ("1/30", "1/60", "1/125", "1/250", "1/500", "1/1000", "2", "15")
APERTURES = ((18, "1.8"), (28, "2.8"), (40, "4.0"), (56, "5.6"), (80, "8.0"), (110, "11.0"))
ISOS = ("100", "200", "400", "800", "1600", "3200")
EPOCH = datetime(2012, 1, 1, tzinfo=UTC)
SPAN_DAYS = 12 * 365


@dataclass
class Library:
    users: list[User]
    photos: dict[str, Photo]
    photosets: dict[str, Photoset]
    # favourites[nsid] = {photo_id: favedate}
    favorites: dict[str, dict[str, int]] = field(default_factory=dict)
    next_photo_id: int = 0
    next_set_id: int = 0


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _nsid(rng: random.Random) -> str:
    return f"{rng.randint(10_000_000, 199_999_999)}@N0{rng.choice('0124578')}"


def size_secret(photo_secret: str, suffix: str) -> str:
    """Sizes from h (1600) up have their own secret on Flickr (§6.3); derive one stably."""
    return hashlib.sha1(f"{photo_secret}:{suffix}".encode(), usedforsecurity=False).hexdigest()[:10]


def _users(rng: random.Random) -> list[User]:
    users = [
        User(
            nsid=_nsid(rng),
            username=username,
            fullname=fullname,
            location=location,
            ispro=ispro,
            iconserver=str(rng.randint(1000, 65535)),
            path_alias=alias,
            description=f"Photos by {fullname.split()[0]}, mostly around {location.split(',')[0]}.",
        )
        for username, fullname, location, ispro, alias in PEOPLE
    ]
    aurora, miles, kumiko, _rafael = users
    # Contacts, so friend/family privacy has someone to apply to (§5.2 "auth-varying").
    aurora.friends = {miles.nsid}
    aurora.family = {kumiko.nsid}
    miles.friends = {aurora.nsid}
    kumiko.friends = {miles.nsid}
    kumiko.family = {aurora.nsid}
    return users


def _privacy(rng: random.Random) -> tuple[int, int, int]:
    roll = rng.random()
    if roll < 0.65:
        return 1, 0, 0
    if roll < 0.75:
        return 0, 1, 0
    if roll < 0.82:
        return 0, 0, 1
    if roll < 0.88:
        return 0, 1, 1
    return 0, 0, 0


def _exif(rng: random.Random, taken: datetime) -> tuple[str, list[ExifTag]]:
    make, model, lens = rng.choice(CAMERAS)
    raw_f, clean_f = rng.choice(APERTURES)
    exposure = rng.choice(EXPOSURES)
    focal = rng.choice((23, 24, 35, 50, 70, 85))
    iso = rng.choice(ISOS)
    stamp = taken.strftime("%Y:%m:%d %H:%M:%S")
    tags = [
        ExifTag("IFD0", 0, "Make", "Make", make),
        ExifTag("IFD0", 0, "Model", "Model", model),
        ExifTag("ExifIFD", 0, "ExposureTime", "Exposure", exposure, f"{exposure} sec"),
        ExifTag("ExifIFD", 0, "FNumber", "Aperture", f"{raw_f}/10", f"f/{clean_f}"),
        ExifTag("ExifIFD", 0, "ISO", "ISO Speed", iso),
        ExifTag("ExifIFD", 0, "DateTimeOriginal", "Date and Time (Original)", stamp),
        ExifTag("ExifIFD", 0, "FocalLength", "Focal Length", f"{focal}.0 mm"),
        ExifTag("ExifIFD", 0, "LensModel", "Lens Model", lens),
    ]
    return f"{make.split()[0].title()} {model}", tags


def _photo(rng: random.Random, owner: User, home: tuple[float, float]) -> Photo:
    taken = EPOCH + timedelta(seconds=rng.randint(0, SPAN_DAYS * 86400))
    uploaded = taken + timedelta(seconds=rng.randint(3600, 60 * 86400))
    subject = rng.choice(SUBJECTS)
    tags = [*rng.sample(TAGS, rng.randint(1, 5)), subject]
    width, height = rng.choice(DIMENSIONS)
    ispublic, isfriend, isfamily = _privacy(rng)
    camera, exif = _exif(rng, taken)
    geo = None
    if rng.random() < 0.4:
        geo = (
            round(home[0] + rng.uniform(-0.2, 0.2), 6),
            round(home[1] + rng.uniform(-0.2, 0.2), 6),
        )
    return Photo(
        id="",  # assigned once every library is drawn, in upload order
        owner=owner.nsid,
        secret=_hex(rng, 10),
        server=str(rng.randint(1000, 65535)),
        farm=66,
        originalsecret=_hex(rng, 10),
        originalformat="jpg",
        title=f"{rng.choice(MOODS)} {subject}",
        description=f"Taken near {owner.location.split(',')[0]}." if rng.random() < 0.7 else "",
        tags=tags,
        date_taken=taken.strftime("%Y-%m-%d %H:%M:%S"),
        date_upload=int(uploaded.timestamp()),
        last_update=int(uploaded.timestamp()) + rng.randint(0, 86400),
        ispublic=ispublic,
        isfriend=isfriend,
        isfamily=isfamily,
        width=width,
        height=height,
        license=rng.choice(("0", "0", "0", "1", "2", "4", "5", "9", "10")),
        media="video" if rng.random() < 0.05 else "photo",
        views=rng.randint(0, 5000),
        exif=exif,
        camera=camera,
        geo=geo,
        size_bytes=rng.randint(2_000_000, 12_000_000),
    )


def _photosets(rng: random.Random, lib: Library, owner: User) -> None:
    own = sorted((p for p in lib.photos.values() if p.owner == owner.nsid), key=lambda p: p.date_upload)
    for _ in range(rng.randint(2, 4)):
        members = sorted(rng.sample(own, rng.randint(5, min(20, len(own)))), key=lambda p: p.id)
        primary = members[0]
        lib.next_set_id += rng.randint(3, 900)
        created = max(p.date_upload for p in members)
        subject = rng.choice(SUBJECTS)
        lib.photosets[str(lib.next_set_id)] = Photoset(
            id=str(lib.next_set_id),
            owner=owner.nsid,
            title=f"{subject.title()} {rng.randint(2012, 2024)}",
            description=rng.choice(("", f"A few frames of the {subject}.")),
            primary=primary.id,
            photo_ids=[p.id for p in members],
            secret=primary.secret,
            server=primary.server,
            farm=primary.farm,
            date_create=created,
            date_update=created + rng.randint(0, 86400 * 30),
            count_views=rng.randint(0, 800),
        )


def build_library(seed: int = 1, photos_per_user: tuple[int, int] = (30, 60)) -> Library:
    rng = random.Random(seed)
    users = _users(rng)
    drawn: list[Photo] = []
    for user, home in zip(users, HOMES, strict=True):
        drawn.extend(_photo(rng, user, home) for _ in range(rng.randint(*photos_per_user)))
    # Flickr photo ids grow with upload time across all members; mimic that.
    next_id = rng.randint(50_000_000_000, 52_000_000_000)
    drawn.sort(key=lambda p: p.date_upload)
    for photo in drawn:
        next_id += rng.randint(1_000, 900_000)
        photo.id = str(next_id)
    lib = Library(
        users=users,
        photos={p.id: p for p in drawn},
        photosets={},
        next_photo_id=next_id,
        next_set_id=72157_000_000_000_000 + rng.randint(0, 10**12),
    )
    for user in users:
        _photosets(rng, lib, user)
        others = [p for p in drawn if p.owner != user.nsid and p.ispublic]
        faves = rng.sample(others, min(len(others), rng.randint(8, 15)))
        lib.favorites[user.nsid] = {
            p.id: p.date_upload + rng.randint(3600, 400 * 86400) for p in sorted(faves, key=lambda p: p.id)
        }
    return lib
