"""Bookkeeping written in batches, off the path a caller or a job waits on.

Some records only need to reach the database or Redis soon, not before the answer: that a job's
message was published (jobs/published_marks.py), the attempt log (flickrhub/workers.py), usage
counts (jobs/usage.py). Each is noted in memory where it happens and written with the others by
a background thread about every `every` seconds, one statement or round trip for all; a clean
exit writes what is left. What each record may lose if the process is killed outright, and why
that is safe, is said where it is used.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog
from django.db import close_old_connections, connection

log = structlog.get_logger(__name__)

T = TypeVar("T")


class Batch(Generic[T]):
    def __init__(
        self,
        name: str,
        *,
        every: float,
        write: Callable[[Batch[T], list[T]], int],
        max_pending: int,
        database: bool,
    ) -> None:
        """`write(batch, items)` writes the items and returns how many it wrote; what it cannot
        write yet it hands to `batch.put_back`. `database`: the writes use this thread's
        database connection, which is given back after each."""
        self.name = name
        self.every = every
        self.max_pending = max_pending
        self.database = database
        self._write = write
        self._lock = threading.Lock()
        self._pending: list[T] = []
        self._thread: threading.Thread | None = None
        # The thread runs while this is true. Unit tests turn it off and call flush() themselves.
        self.background = True
        atexit.register(self._flush_at_exit)

    def note(self, item: T) -> None:
        """Records `item`, to be written within about `every` seconds."""
        with self._lock:
            if len(self._pending) < self.max_pending:
                self._pending.append(item)
            if self.background and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def flush(self) -> int:
        """Writes what was noted now; returns how many were written."""
        with self._lock:
            items = self._pending[:]
            self._pending.clear()
        return self._write(self, items) if items else 0

    def put_back(self, items: list[T]) -> None:
        """Keeps `items` for the next flush (at most `max_pending` in all)."""
        with self._lock:
            self._pending[:0] = items[: max(0, self.max_pending - len(self._pending))]

    def discard(self) -> None:
        """Forgets what was not written yet (tests)."""
        with self._lock:
            self._pending.clear()

    def _run(self) -> None:
        while self.background:
            time.sleep(self.every)
            try:
                self.flush()
            except Exception:  # never let the thread die: the next flush tries again
                log.exception("batch_write_failed", batch=self.name)
            if self.database:
                self._release_connection()

    def _release_connection(self) -> None:
        # This thread's connection is its own: give it back as a request would. A failure here
        # (a connection already broken, or refused) must not end the thread either: the next
        # flush opens a new one.
        try:
            if connection.settings_dict.get("OPTIONS", {}).get("pool"):
                connection.close()
            else:
                close_old_connections()
        except Exception:
            log.warning("batch_connection_release_failed", batch=self.name, exc_info=True)

    def _flush_at_exit(self) -> None:
        if self._pending:
            try:
                self.flush()
            except Exception:  # noqa: S110 (the interpreter is going away; see the module's notes)
                pass
