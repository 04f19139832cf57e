"""Helpers for tests that talk to the sandbox: tiny real images and signed uploads.

Pillow is not a dependency, so the images are written by hand: a PNG from zlib + CRCs and a
baseline JPEG with one 8x8 grey block. Both are valid files, not just magic bytes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

import requests
from requests_oauthlib import OAuth1


def tiny_png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 40, 90)) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\x00" + bytes(rgb) * width  # filter byte 0, then RGB pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def tiny_jpeg(width: int = 8, height: int = 8) -> bytes:
    """A baseline greyscale JPEG whose every 8x8 block is mid-grey (DC 0, no AC)."""
    quant = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + b"\x01" * 64
    frame = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    # One Huffman code of length 1 ("0") in each table: DC category 0, AC end-of-block.
    dc = b"\xff\xc4" + struct.pack(">H", 20) + b"\x00" + b"\x01" + b"\x00" * 15 + b"\x00"
    ac = b"\xff\xc4" + struct.pack(">H", 20) + b"\x10" + b"\x01" + b"\x00" * 15 + b"\x00"
    scan = b"\xff\xda" + struct.pack(">H", 8) + b"\x01\x01\x00\x00\x3f\x00"
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    bits = "00" * blocks
    bits += "1" * (-len(bits) % 8)  # pad the last byte with ones
    data = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    data = data.replace(b"\xff", b"\xff\x00")
    return b"\xff\xd8" + quant + frame + dc + ac + scan + data + b"\xff\xd9"


def signed_upload(
    url: str,
    auth: OAuth1,
    fields: Mapping[str, str],
    photo: bytes | None,
    filename: str = "photo.jpg",
    timeout: float = 10.0,
) -> requests.Response:
    """POST a multipart upload the way flickrapi does: sign the fields without the photo, then
    send the real multipart body with that Authorization header (FLICKR-API.md §3.1)."""
    dummy = requests.Request("POST", url, data=dict(fields), auth=auth).prepare()
    files = {"photo": (filename, photo, "application/octet-stream")} if photo is not None else None
    headers = {"Authorization": dummy.headers["Authorization"]}
    # `files=None` with no fields would send no multipart body at all; force one.
    return requests.post(
        url,
        data=dict(fields),
        files=files or {"_": ("", b"")},
        headers=headers,
        timeout=timeout,
    )


class SandboxClient:
    """A minimal signed client for the sandbox, built on requests-oauthlib.

    `client.json("flickr.test.login")` -> the parsed JSON answer;
    `client.rest("flickr.test.echo", format="rest")` -> the raw response.
    """

    def __init__(
        self,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        token: str | None = None,
        token_secret: str | None = None,
        *,
        signature_type: str = "auth_header",
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.auth = OAuth1(
            consumer_key,
            consumer_secret,
            token,
            token_secret,
            signature_type=signature_type,
        )

    @property
    def rest_url(self) -> str:
        return f"{self.base_url}/services/rest/"

    def rest(self, method: str, *, http_method: str = "POST", **args: str) -> requests.Response:
        params = {"method": method, **args}
        if http_method == "GET":
            return requests.get(self.rest_url, params=params, auth=self.auth, timeout=self.timeout)
        return requests.post(self.rest_url, data=params, auth=self.auth, timeout=self.timeout)

    def json(self, method: str, **args: str) -> dict:
        answer = self.rest(method, format="json", nojsoncallback="1", **args)
        answer.raise_for_status()
        return answer.json()

    def upload(
        self, fields: Mapping[str, str], photo: bytes | None, filename: str = "photo.jpg"
    ) -> requests.Response:
        return signed_upload(f"{self.base_url}/services/upload/", self.auth, fields, photo, filename)

    def replace(
        self, fields: Mapping[str, str], photo: bytes | None, filename: str = "photo.jpg"
    ) -> requests.Response:
        return signed_upload(f"{self.base_url}/services/replace/", self.auth, fields, photo, filename)


def register_access_token(
    app: object,
    *,
    token: str,
    secret: str,
    nsid: str,
    perms: str = "write",
    consumer_key: str | None = None,
) -> None:
    """Make a sandbox accept an access token minted elsewhere — e.g. one read from a token
    export of the original service — as if it had issued it for `nsid`."""
    from .models import AccessToken
    from .state import SANDBOX_CONSUMER_KEY

    state = app.state  # type: ignore[attr-defined]
    with state.lock:
        state.access_tokens[token] = AccessToken(
            token, secret, consumer_key or SANDBOX_CONSUMER_KEY, nsid, perms
        )
