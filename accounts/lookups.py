"""The two reads every API call makes, kept for a moment in each process.

Every enqueue read its API key's client and then its account with that account's Flickr app:
two statements of the three an enqueue makes, and a fifth of a web process's CPU under load
(`bench/RESULTS.md`). Both rows change rarely, so each web process keeps what it read for
API_LOOKUP_CACHE_SECONDS (1 s by default; 0 turns it off):

- Only what was found is kept. An unknown key or `user_id` is read again each time, so a flood
  of bad keys cannot fill the memory, and a key or account made a moment ago works at once.
- A revoked API key, a deleted account, or one that needs re-linking is seen within that
  second by every process: at once by the process that made the change (the models' signals and
  `forget()` clear it), at most API_LOOKUP_CACHE_SECONDS later by the others. The worker reads
  the account again when it claims the job, so a call is never signed for a revoked account.
- A job written for an account deleted in that second fails its INSERT on the foreign key;
  `jobs.services` then forgets both reads and answers as for an unknown account (404).
- Each caller gets its own copy of the model instance: requests run in threads, and a copy's
  cached relations and fields are the caller's to change.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from cachetools import TTLCache
from django.conf import settings

T = TypeVar("T")

# Entries per kind and process: far more API keys and accounts than a hub serves at once, and a
# bound on the memory all the same (about 2 KB an entry).
MAX_ENTRIES = 10_000

_lock = threading.Lock()
_caches: dict[str, TTLCache[Hashable, Any]] = {}


def _cache(kind: str, seconds: float) -> TTLCache[Hashable, Any]:
    cache = _caches.get(kind)
    if cache is None or cache.ttl != seconds:
        cache = _caches[kind] = TTLCache(maxsize=MAX_ENTRIES, ttl=seconds)
    return cache


def remembered(kind: str, key: Hashable, read: Callable[[], T | None]) -> T | None:
    """What `read()` returns for `key`: kept from this process's read of it within the last
    API_LOOKUP_CACHE_SECONDS if that read found something. `read` runs outside the lock, so two
    threads that miss at once both read."""
    seconds = float(settings.API_LOOKUP_CACHE_SECONDS)
    if seconds <= 0:
        return read()
    with _lock:
        found = _cache(kind, seconds).get(key)
    if found is None:
        found = read()
        if found is None:
            return None
        with _lock:
            _cache(kind, seconds)[key] = found
    return copy.copy(found)


def forget(kind: str | None = None, key: Hashable | None = None) -> None:
    """Drops what this process keeps — all of it, of one kind, or one key of it — after a change
    it made itself."""
    with _lock:
        for name, cache in _caches.items():
            if kind is not None and name != kind:
                continue
            if key is None:
                cache.clear()
            else:
                cache.pop(key, None)


def forget_all(**_: Any) -> None:
    """Receiver of the account models' save and delete signals."""
    forget()
