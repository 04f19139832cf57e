"""`Idempotency-Key` on enqueue: a retried request gets the job the first one created.

Keys are scoped per API client and remembered for IDEMPOTENCY_KEY_TTL_HOURS. The same key with
the same body answers the first request's answer; with another body, 422; while the first
request is still being accepted, 409. A request that ends in an error releases its key, so the
caller can fix the request and send it again with the same key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiClient
from flickrhub.api import ApiError
from jobs.models import IdempotencyKey, Job

HEADER = "Idempotency-Key"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
# A claim older than this whose request never finished (its process died) may be taken over.
STALE_CLAIM = timedelta(seconds=60)


@dataclass
class Claim:
    record: IdempotencyKey | None = None  # ours to finish or release
    replay: IdempotencyKey | None = None  # an earlier request's answer to give again


def fingerprint(fields: dict[str, Any], file_sha256: str | None = None) -> str:
    canonical = json.dumps([fields, file_sha256], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise ApiError(
            status_code=400,
            code="ERR_INVALID_REQUEST",
            message=f"{HEADER} must be 1 to 255 printable ASCII characters without spaces.",
        )
    return key


def claim(client: ApiClient, key: str, print_: str) -> Claim:
    now = timezone.now()
    IdempotencyKey.objects.filter(
        client=client, key=key, created_at__lt=now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    ).delete()
    for _ in range(3):
        try:
            with transaction.atomic():
                return Claim(record=IdempotencyKey.objects.create(client=client, key=key, fingerprint=print_))
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(client=client, key=key).first()
        if existing is None:
            continue  # released meanwhile: claim it
        if existing.fingerprint != print_:
            raise ApiError(
                status_code=422,
                code="ERR_IDEMPOTENCY_KEY_REUSED",
                message=(
                    f"This {HEADER} was used with a different request body within the last "
                    f"{settings.IDEMPOTENCY_KEY_TTL_HOURS} hours. Use a new key for a new request."
                ),
            )
        if existing.job_id is not None and existing.response is not None:
            return Claim(replay=existing)
        if existing.created_at < now - STALE_CLAIM:
            taken = IdempotencyKey.objects.filter(pk=existing.pk, created_at=existing.created_at).update(
                created_at=now
            )
            if taken:
                existing.created_at = now
                return Claim(record=existing)
        raise _in_progress()
    raise _in_progress()


def _in_progress() -> ApiError:
    return ApiError(
        status_code=409,
        code="ERR_IDEMPOTENCY_IN_PROGRESS",
        message=f"A request with this {HEADER} is still being accepted; ask again in a moment.",
        headers={"Retry-After": "1"},
    )


def finish(claim: Claim, job: Job, response: dict[str, Any]) -> None:
    if claim.record is not None:
        IdempotencyKey.objects.filter(pk=claim.record.pk).update(job=job, status_code=202, response=response)


def release(claim: Claim) -> None:
    if claim.record is not None:
        IdempotencyKey.objects.filter(pk=claim.record.pk, job__isnull=True).delete()
