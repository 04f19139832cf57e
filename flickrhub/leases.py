"""Leases: periodic work done by one process at a time across every worker.

`lease_acquire(name=…, seconds=…)` returns True to exactly one caller until the lease runs out;
the holder does not release it, so the work runs once per `seconds` however many processes try.
With Redis (production) the lease is one atomic `SET NX EX` through django-redis; without it a
row in the database is claimed with a conditional UPDATE, which is atomic on PostgreSQL and
SQLite alike (the local-memory cache would be private to each process).
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from flickrhub.models import Lease

log = structlog.get_logger(__name__)


def _redis_cache() -> bool:
    return bool(settings.CACHES["default"]["BACKEND"].startswith("django_redis."))


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_acquire(*, name: str, seconds: float) -> bool:
    """True if this process now holds the lease `name` for `seconds`."""
    holder = _holder()
    if _redis_cache():
        try:
            return bool(cache.add(f"lease:{name}", holder, timeout=max(1, round(seconds))))
        except Exception as exc:  # Redis is down: the database still decides, so work goes on
            log.warning("lease_redis_unavailable", lease=name, error=type(exc).__name__)
    return _database_lease(name=name, seconds=seconds, holder=holder)


def lease_keep(*, name: str, seconds: float) -> bool:
    """True if this process holds the lease `name` for the next `seconds`: taken if free,
    renewed if already ours. For a role one process plays for as long as it lives (the quota
    dispatcher); when it dies, another takes the role once `seconds` pass."""
    holder = _holder()
    if _redis_cache():
        try:
            key = f"lease:{name}"
            timeout = max(1, round(seconds))
            if cache.add(key, holder, timeout=timeout):
                return True
            # Two holders for a moment (the lease ran out between these two calls) is harmless
            # for the roles that use this: they are also safe run concurrently.
            return bool(cache.get(key) == holder and cache.touch(key, timeout=timeout))
        except Exception as exc:
            log.warning("lease_redis_unavailable", lease=name, error=type(exc).__name__)
    return _database_lease(name=name, seconds=seconds, holder=holder, renew=True)


def _database_lease(*, name: str, seconds: float, holder: str, renew: bool = False) -> bool:
    now = timezone.now()
    until = now + timedelta(seconds=seconds)
    # An expired lease is taken over by one conditional UPDATE: of two processes racing, the
    # second finds the row no longer expired and updates nothing.
    free = Q(expires_at__lte=now) | Q(holder=holder) if renew else Q(expires_at__lte=now)
    if Lease.objects.filter(free, name=name).update(holder=holder, expires_at=until):
        return True
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, holder=holder, expires_at=until)
        return True
    except IntegrityError:
        return False  # held by someone else
