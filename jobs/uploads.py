"""Files for upload and replace jobs: received, checked, staged, handed to the worker, removed.

A request's `photo` part streams through `StagingUploadHandler` into a temporary file in 64 KB
chunks, so a 200 MB photo never sits in memory. The handler refuses the file as soon as it
shows itself too large (413) or not an image or video (415, judged from its first bytes), and
removes what it had spooled. An accepted file is moved into the "uploads" storage under its
job's id before the job row is written; the worker streams it from there to Flickr and the
runner removes it when the job ends. `staged_sweep` removes files whose job is gone or over.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import IO, Any

import filetype
import structlog
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.files.storage import Storage, storages
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone
from rest_framework.parsers import BaseParser, DataAndFiles

from flickrhub.api import ApiError

log = structlog.get_logger(__name__)

PHOTO_FIELD = "photo"
STAGED_SUFFIX = ".upload"
# `filetype` reads at most this many bytes to recognise a file.
SNIFF_BYTES = 8192


def upload_storage() -> Storage:
    return storages["uploads"]


def too_large(size: int | None = None) -> ApiError:
    limit = settings.UPLOAD_MAX_BYTES
    seen = f"The file is over {limit} bytes" if size is None else f"The request body is {size} bytes"
    return ApiError(
        status_code=413,
        code="ERR_PAYLOAD_TOO_LARGE",
        message=f"{seen}; the limit for a photo or video is {limit} bytes (UPLOAD_MAX_BYTES).",
    )


def _sniff(head: bytes) -> str | None:
    """The file's MIME type if its bytes say it is an image or a video, else None."""
    kind = filetype.guess(head)
    if kind is None or not kind.mime.startswith(("image/", "video/")):
        return None
    return str(kind.mime)


class StagingUploadHandler(TemporaryFileUploadHandler):
    """Spools the one `photo` part to a temporary file, counting and sniffing as it goes."""

    def __init__(self, request: Any = None, *, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.received = 0
        self.head = b""
        self.mime: str | None = None
        self.files_seen = 0
        self.digest = hashlib.sha256()  # for Idempotency-Key fingerprints

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        self.files_seen += 1
        if field_name != PHOTO_FIELD:
            raise ApiError(
                status_code=400,
                code="ERR_INVALID_REQUEST",
                message=f"Unexpected file part {field_name[:64]!r}: send the file as the 'photo' part.",
            )
        if self.files_seen > 1:
            raise ApiError(
                status_code=400,
                code="ERR_INVALID_REQUEST",
                message="Send one file per job: the request has more than one 'photo' part.",
            )
        super().new_file(field_name, file_name, *args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self.upload_interrupted()
            raise too_large()
        if self.mime is None and len(self.head) < SNIFF_BYTES:
            self.head += raw_data[: SNIFF_BYTES - len(self.head)]
            if len(self.head) >= SNIFF_BYTES:
                self._check_type()
        self.digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if file_size and self.mime is None:
            self._check_type()  # a file shorter than SNIFF_BYTES
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.content_type = self.mime or ""
            uploaded.sha256 = self.digest.hexdigest()  # type: ignore[attr-defined]
        return uploaded

    def _check_type(self) -> None:
        self.mime = _sniff(self.head)
        if self.mime is None:
            self.upload_interrupted()
            raise ApiError(
                status_code=415,
                code="ERR_UNSUPPORTED_MEDIA_TYPE",
                message=(
                    "The 'photo' part is not an image or a video (judged from its first bytes): "
                    "Flickr takes photos such as JPEG, PNG, GIF, TIFF or HEIC, and videos."
                ),
            )


class UploadMultiPartParser(BaseParser):
    """DRF's multipart parser with the staging handler and the hub's own errors."""

    media_type = "multipart/form-data"

    def parse(
        self,
        stream: IO[Any] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> DataAndFiles:
        request = (parser_context or {})["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        handler = StagingUploadHandler(request._request, max_bytes=settings.UPLOAD_MAX_BYTES)
        try:
            parser = DjangoMultiPartParser(meta, stream, [handler], settings.DEFAULT_CHARSET)  # type: ignore[arg-type]
            data, files = parser.parse()
        except RequestDataTooBig:
            raise ApiError(
                status_code=413,
                code="ERR_PAYLOAD_TOO_LARGE",
                message="The form fields besides the file are over the size limit.",
            ) from None
        except (TooManyFieldsSent, MultiPartParserError) as exc:
            raise ApiError(
                status_code=400,
                code="ERR_INVALID_REQUEST",
                message=f"The multipart body could not be read: {exc}",
            ) from None
        return DataAndFiles(data, files)


def stage(file: UploadedFile, job_id: uuid.UUID) -> str:
    """Moves an accepted file into the uploads storage under its job's id; returns its name."""
    return upload_storage().save(f"{job_id}{STAGED_SUFFIX}", file)


def unstage(name: str) -> None:
    """Removes a staged file; a file already gone is fine."""
    if not name:
        return
    try:
        upload_storage().delete(name)
    except OSError as exc:
        log.warning("upload_unstage_failed", staged=name, error=type(exc).__name__)


def open_staged(name: str) -> IO[bytes]:
    return upload_storage().open(name, "rb")


def staged_sweep(*, now: datetime | None = None) -> int:
    """Removes staged files whose job no longer exists or has ended, once they are older than
    UPLOAD_ORPHAN_GRACE_SECONDS (a file is staged a moment before its job row is committed)."""
    from jobs.models import ACTIVE_STATES, Job

    storage = upload_storage()
    now = now or timezone.now()
    try:
        _dirs, files = storage.listdir("")
    except FileNotFoundError:
        return 0
    staged: dict[uuid.UUID, str] = {}
    for name in files:
        try:
            staged[uuid.UUID(name.removesuffix(STAGED_SUFFIX))] = name
        except ValueError:
            continue  # not ours
    removed = 0
    for start in range(0, len(staged), 500):
        ids = list(staged)[start : start + 500]
        live = set(Job.objects.filter(pk__in=ids, state__in=ACTIVE_STATES).values_list("pk", flat=True))
        for job_id in ids:
            name = staged[job_id]
            if job_id in live:
                continue
            try:
                age = now - storage.get_modified_time(name)
            except FileNotFoundError:
                continue
            if age < timedelta(seconds=settings.UPLOAD_ORPHAN_GRACE_SECONDS):
                continue
            unstage(name)
            removed += 1
    if removed:
        log.warning("staged_files_removed", count=removed)
    return removed
