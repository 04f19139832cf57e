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
from django.utils import timezone

from flickrhub.models import Lease

log = structlog.get_logger(__name__)


def _redis_cache() -> bool:
    return bool(settings.CACHES["default"]["BACKEND"].startswith("django_redis."))


def lease_acquire(*, name: str, seconds: float) -> bool:
    """True if this process now holds the lease `name` for `seconds`."""
    holder = f"{socket.gethostname()}:{os.getpid()}"
    if _redis_cache():
        try:
            return bool(cache.add(f"lease:{name}", holder, timeout=max(1, round(seconds))))
        except Exception as exc:  # Redis is down: the database still decides, so work goes on
            log.warning("lease_redis_unavailable", lease=name, error=type(exc).__name__)
    return _database_lease(name=name, seconds=seconds, holder=holder)


def _database_lease(*, name: str, seconds: float, holder: str) -> bool:
    now = timezone.now()
    until = now + timedelta(seconds=seconds)
    # An expired lease is taken over by one conditional UPDATE: of two processes racing, the
    # second finds the row no longer expired and updates nothing.
    if Lease.objects.filter(name=name, expires_at__lte=now).update(holder=holder, expires_at=until):
        return True
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, holder=holder, expires_at=until)
        return True
    except IntegrityError:
        return False  # held by someone else
