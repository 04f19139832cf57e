"""Recognise an uploaded file by its first bytes, without keeping the file (FLICKR-API.md §3).

The file is read once, in chunks, from werkzeug's spooled copy: hashed, measured, sniffed
at the head and checked for a proper end at the tail. Only the summary is kept.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import IO

CHUNK = 64 * 1024
HEAD = 64 * 1024  # enough to find a JPEG's frame header behind its EXIF block
TAIL = 16

HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif"}


@dataclass(frozen=True)
class FileSummary:
    size: int
    sha1: str
    kind: str | None  # jpeg, png, gif, webp, tiff, heic, mp4, mov; None if unrecognised
    media: str  # photo or video
    truncated: bool
    width: int | None = None
    height: int | None = None

    @property
    def extension(self) -> str:
        return {"jpeg": "jpg", "tiff": "tif"}.get(self.kind or "", self.kind or "jpg")


def _kind(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in HEIF_BRANDS:
            return "heic"
        return "mov" if brand == b"qt  " else "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "mov"  # QuickTime files without an ftyp box
    return None


def _truncated(kind: str, tail: bytes) -> bool:
    # Formats with a fixed trailer tell us when the upload was cut short (error 3).
    if kind == "jpeg":
        return not tail.rstrip(b"\x00").endswith(b"\xff\xd9")
    if kind == "png":
        return not tail.endswith(b"IEND\xaeB`\x82")
    if kind == "gif":
        return not tail.endswith(b";")
    return False


def _jpeg_dims(head: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        length = struct.unpack(">H", head[i + 2 : i + 4])[0]
        # SOF0..SOF15 carry the size, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def _dims(kind: str | None, head: bytes) -> tuple[int, int] | None:
    if kind == "png" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return width, height
    if kind == "gif" and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return width, height
    if kind == "jpeg":
        return _jpeg_dims(head)
    return None


def summarise(stream: IO[bytes]) -> FileSummary:
    digest = hashlib.sha1(usedforsecurity=False)  # a fingerprint for dedup_check
    head = b""
    tail = b""
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        if len(head) < HEAD:
            head += chunk[: HEAD - len(head)]
        tail = (tail + chunk)[-TAIL:]
        size += len(chunk)
    kind = _kind(head)
    dims = _dims(kind, head)
    return FileSummary(
        size=size,
        sha1=digest.hexdigest(),
        kind=kind,
        media="video" if kind in ("mp4", "mov") else "photo",
        truncated=_truncated(kind, tail) if kind else False,
        width=dims[0] if dims else None,
        height=dims[1] if dims else None,
    )
