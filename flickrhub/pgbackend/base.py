"""The hub's PostgreSQL backend: django-prometheus's (query metrics), with a connection health
check that needs no round trip while the connection is quiet.

With CONN_HEALTH_CHECKS, Django checks a persistent connection before the first query of each
request and of each job message with a `SELECT 1`: a round trip to the server on every enqueue
and every job, on the path a `?wait` caller waits on. An idle PostgreSQL connection receives
nothing unless the server is ending it — `pg_terminate_backend`, a restart, an idle timeout
all send a FATAL error, then close the socket — so a socket with nothing to read is as
healthy as a `SELECT 1` would find it, and one with anything to read gets the `SELECT 1`,
which fails on a dropped connection and makes Django open a new one.
"""

from __future__ import annotations

import select

from django_prometheus.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        idle = connection.info.transaction_status == pq.TransactionStatus.IDLE
        if idle and not _readable(connection.fileno()):
            return True
        return bool(super().is_usable())


def _readable(fd: int) -> bool:
    """Whether the server sent anything (or closed the socket), without waiting."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))
