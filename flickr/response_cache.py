"""Flickr answers kept for reuse, and identical calls in flight made once.

Only read-only methods are cached (`catalog.is_cacheable`; the original cached writes too),
per account, method and canonical arguments, for CACHE_TTL_SECONDS. A job may ask for a
fresher answer (`max_age`) or none from the cache (`cache: false`).

Coalescing: the first job to make a call claims it (`cache.add`, atomic in Redis and in local
memory); identical jobs that arrive while it is in flight wait for that job and take its answer
instead of calling Flickr again.

While Redis is down (flickr/shared_state.py) every look-up is a miss and every job makes its
own call: slower on the quota, never wrong.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from flickr.shared_state import or_else


def call_key(account_id: int, method: str, params: dict[str, str]) -> str:
    """The identity of a call: the same account, method and arguments in any order."""
    canonical = json.dumps([account_id, method, sorted(params.items())], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Hit:
    flickr: dict[str, Any]
    age_seconds: float

    @property
    def ttl_remaining(self) -> int:
        return max(0, int(settings.CACHE_TTL_SECONDS - self.age_seconds))


@or_else("response_cache", None)
def get(key: str, *, max_age: int | None) -> Hit | None:
    if not settings.CACHE_ENABLED:
        return None
    stored = cache.get(f"flickr:answer:{key}")
    if not stored:
        return None
    age = max(0.0, time.time() - stored["cached_at"])
    if max_age is not None and age > max_age:
        return None
    return Hit(flickr=stored["flickr"], age_seconds=age)


@or_else("response_cache", None)
def put(key: str, flickr: dict[str, Any]) -> None:
    if not settings.CACHE_ENABLED or settings.CACHE_TTL_SECONDS <= 0:
        return
    cache.set(
        f"flickr:answer:{key}",
        {"flickr": flickr, "cached_at": time.time()},
        timeout=settings.CACHE_TTL_SECONDS,
    )


@or_else("response_cache", None)
def lead(key: str, job_id: str) -> str | None:
    """Claims the call for `job_id`. Returns None when this job is the one to make it, or the
    id of the job already making it."""
    slot = f"flickr:inflight:{key}"
    for _ in range(3):
        if cache.add(slot, job_id, timeout=_claim_seconds()):
            return None
        leader = cache.get(slot)
        if leader == job_id:
            return None  # this job led before, waited (for quota), and is back
        if leader is not None:
            return str(leader)
        # the leader finished between our two looks: try to lead again
    return None


@or_else("response_cache", None)
def hold(key: str, job_id: str, seconds: float) -> None:
    """Keeps the claim through a wait (quota, circuit) so identical jobs keep waiting for this
    one instead of each spending a call of their own."""
    slot = f"flickr:inflight:{key}"
    if cache.get(slot) == job_id:
        cache.set(slot, job_id, timeout=_claim_seconds() + int(seconds))


def _claim_seconds() -> int:
    return int(settings.FLICKR_TIMEOUT_SECONDS) + 60


@or_else("response_cache", None)
def release(key: str, job_id: str) -> None:
    """Ends the claim, if `job_id` still holds it, so another job may lead."""
    slot = f"flickr:inflight:{key}"
    if cache.get(slot) == job_id:
        cache.delete(slot)
