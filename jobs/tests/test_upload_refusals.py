"""Files the hub refuses at the door, beyond those in test_uploads.py: the size limit to the
byte, files that claim to be a JPEG and are not, files cut before they show what they are, a
request body cut off mid-file, and a body that trickles in slowly past the limit. Each gets a
clear 4xx, and leaves no job, no staged file and no spooled temporary file.

A JPEG or PNG cut inside its image data still starts like one, so the hub takes it and Flickr
judges it: the job fails with Flickr's code 3 and its file is removed
(`test_uploads.py::test_a_cut_short_file_fails_with_flickr_code_3`).
"""

from __future__ import annotations

import io
import os
import time

import pytest
from django.core import signals
from django.db import close_old_connections

from flickr.fake.testing import tiny_jpeg, tiny_png
from flickrhub.wsgi import application
from jobs.models import Job

URL = "/api/v1/flickr/rest"
BOUNDARY = "hubtestboundary"


@pytest.fixture
def spool_dir(settings, tmp_path):
    """Where request bodies are spooled while they stream in: must be empty after a refusal."""
    folder = tmp_path / "spool"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


def files_in(folder) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def send_photo(client, data: bytes, *, name: str = "photo.jpg", content_type: str = "image/jpeg"):
    body = multipart_body(str(client.accounts[0].user_id), data, name=name, content_type=content_type)
    return client.api().generic(
        "POST", URL, data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}"
    )


def multipart_body(user_id: str, data: bytes, *, name: str = "photo.jpg", content_type: str = "image/jpeg"):
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="user_id"\r\n\r\n{user_id}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="target"\r\n\r\nupload\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photo"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def assert_refused(response, status: int, code: str, upload_dir, spool_dir) -> str:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert Job.objects.count() == 0, "a refused request writes no job"
    assert files_in(upload_dir) == [], "a refused request leaves no staged file"
    assert files_in(spool_dir) == [], "a refused request leaves no spooled temporary file"
    return error["message"] + " ".join(error.get("details") or [])


def test_a_file_of_exactly_the_limit_is_taken_and_one_byte_more_is_413(
    world, stub_broker, upload_dir, spool_dir, settings
):
    photo = tiny_jpeg()
    settings.UPLOAD_MAX_BYTES = len(photo) + 1000
    at_limit = photo[:-2] + b"\0" * 1000 + photo[-2:]
    assert len(at_limit) == settings.UPLOAD_MAX_BYTES
    over = assert_refused(
        send_photo(world.alpha, at_limit[:-2] + b"\0" + at_limit[-2:]),
        413,
        "ERR_PAYLOAD_TOO_LARGE",
        upload_dir,
        spool_dir,
    )
    assert str(settings.UPLOAD_MAX_BYTES) in over

    taken = send_photo(world.alpha, at_limit)
    assert taken.status_code == 202, taken.content
    assert Job.objects.get().upload_size == settings.UPLOAD_MAX_BYTES


@pytest.mark.parametrize(
    "data, name, content_type",
    [
        (b"<!doctype html><html><script>alert(1)</script></html>" * 50, "cat.jpg", "image/jpeg"),
        (b"PK\x03\x04" + b"\0" * 2000, "cat.jpg", "image/jpeg"),  # a zip
        (b"\x7fELF\x02\x01\x01" + b"\0" * 2000, "cat.jpeg", "image/jpeg"),  # a program
        (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>" * 40, "cat.jpg", "image/svg+xml"),
        (b"#!/bin/sh\nrm -rf /\n" * 100, "cat.png", "image/png"),
        (b"\0" * 10_000, "cat.jpg", "image/jpeg"),
        (b"\xff\xd8", "cut.jpg", "image/jpeg"),  # a JPEG cut before its type shows
        (b"\x89PN", "cut.png", "image/png"),  # a PNG cut inside its signature
        (b"GI", "cut.gif", "image/gif"),
    ],
    ids=["html", "zip", "elf", "svg", "script", "zeros", "jpeg-2-bytes", "png-3-bytes", "gif-2-bytes"],
)
def test_a_file_that_claims_to_be_a_photo_and_is_not_is_415(
    world, upload_dir, spool_dir, data, name, content_type
):
    message = assert_refused(
        send_photo(world.alpha, data, name=name, content_type=content_type),
        415,
        "ERR_UNSUPPORTED_MEDIA_TYPE",
        upload_dir,
        spool_dir,
    )
    assert "not an image or a video" in message


def test_zero_bytes_are_400_and_leave_nothing(world, upload_dir, spool_dir):
    message = assert_refused(send_photo(world.alpha, b""), 400, "ERR_INVALID_REQUEST", upload_dir, spool_dir)
    assert "photo" in message


# ------------------------------------------------------------------ bodies on the wire


class Trickle(io.RawIOBase):
    """A request body arriving `chunk` bytes at a time with a pause between reads; counts
    what the hub read. With `stop_after`, the client goes away after that many bytes."""

    def __init__(
        self, data: bytes, *, chunk: int = 8192, pause: float = 0.002, stop_after: int | None = None
    ):
        self.data = data
        self.chunk = chunk
        self.pause = pause
        self.stop_after = len(data) if stop_after is None else stop_after
        self.sent = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        time.sleep(self.pause)
        size = self.chunk if size is None or size < 0 else min(size, self.chunk)
        end = min(self.sent + size, self.stop_after)
        piece = self.data[self.sent : end]
        self.sent = end
        return piece

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def through_wsgi(client, stream: Trickle, *, declared: int) -> tuple[int, bytes]:
    """The request as a WSGI server hands it over: the body is a stream, read as it comes."""
    answer: dict[str, str] = {}
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": URL,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_HOST": "localhost",
        "wsgi.url_scheme": "http",
        "wsgi.input": stream,
        "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(declared),
        "HTTP_AUTHORIZATION": f"Bearer {client.key}",
    }
    # The test database lives in this connection: keep Django from closing it, as its own
    # test client does.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, lambda status, headers, exc_info=None: answer.update(status=status))
        body = b"".join(result)
        result.close()  # as every WSGI server does: Django then closes the request's files
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return int(answer["status"].split()[0]), body


def test_a_slow_body_over_the_limit_is_refused_as_it_crosses_it_without_reading_the_rest(
    world, upload_dir, spool_dir, settings
):
    settings.UPLOAD_MAX_BYTES = 64 * 1024
    data = tiny_jpeg()[:-2] + bytes(range(256)) * 2048 + b"\xff\xd9"  # about 512 KB
    body = multipart_body(str(world.alpha.accounts[0].user_id), data)
    stream = Trickle(body)
    # The declared length is within what the API lets a multipart body declare (the file's
    # limit plus room for fields), so only counting the file as it streams can catch it.
    status, answer = through_wsgi(world.alpha, stream, declared=min(len(body), 64 * 1024 + 1024 * 1024))
    assert status == 413, answer
    assert b"ERR_PAYLOAD_TOO_LARGE" in answer
    assert stream.sent < settings.UPLOAD_MAX_BYTES + 3 * 65536, "the rest of the body was not read"
    assert stream.sent < len(body) / 2
    assert Job.objects.count() == 0
    assert files_in(upload_dir) == [] and files_in(spool_dir) == []


def test_a_slow_body_within_the_limit_is_taken(world, stub_broker, upload_dir, spool_dir):
    body = multipart_body(str(world.alpha.accounts[0].user_id), tiny_png())
    status, answer = through_wsgi(world.alpha, Trickle(body, chunk=64, pause=0.001), declared=len(body))
    assert status == 202, answer
    assert Job.objects.get().upload_content_type == "image/png"
    assert files_in(spool_dir) == []  # the spooled copy moved to staging


def test_a_body_cut_off_mid_file_is_400_and_leaves_nothing(world, upload_dir, spool_dir):
    data = tiny_jpeg()[:-2] + b"\0" * 200_000 + b"\xff\xd9"
    body = multipart_body(str(world.alpha.accounts[0].user_id), data)
    stream = Trickle(body, stop_after=len(body) // 2)  # the client went away
    status, answer = through_wsgi(world.alpha, stream, declared=len(body))
    assert status == 400, answer
    assert b"ERR_INVALID_REQUEST" in answer and b"photo" in answer
    assert Job.objects.count() == 0
    assert files_in(upload_dir) == [] and files_in(spool_dir) == []
