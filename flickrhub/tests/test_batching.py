"""The batch writer's background thread: whatever fails, it stays alive and writes what it holds."""

from __future__ import annotations

import threading

import pytest

from flickrhub import batching
from flickrhub.batching import Batch
from tests.stack import wait_until


class Recorder:
    """A `write` that fails its first `failures` calls, keeping the items for the next flush."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.written: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, batch: Batch[int], items: list[int]) -> int:
        with self.lock:
            if self.failures > 0:
                self.failures -= 1
                batch.put_back(items)
                raise RuntimeError("database went away")
            self.written.extend(items)
            return len(items)


@pytest.fixture
def batch_of():
    made: list[Batch[int]] = []

    def make(write: Recorder, *, database: bool) -> Batch[int]:
        batch: Batch[int] = Batch("test-batch", every=0.01, write=write, max_pending=100, database=database)
        made.append(batch)
        return batch

    yield make
    for batch in made:
        batch.background = False
        if batch._thread is not None:
            batch._thread.join(timeout=2)


def test_a_failed_write_keeps_its_items_and_the_thread(batch_of) -> None:
    write = Recorder(failures=2)
    batch = batch_of(write, database=False)
    batch.note(1)
    batch.note(2)
    wait_until(lambda: write.written == [1, 2], "the first two items, after two failed writes")
    thread = batch._thread
    batch.note(3)
    wait_until(lambda: write.written == [1, 2, 3], "the third item")
    assert batch._thread is thread and thread.is_alive()


def test_a_connection_release_that_raises_does_not_end_the_thread(batch_of, monkeypatch) -> None:
    releases: list[int] = []

    def broken_release() -> None:
        releases.append(1)
        raise RuntimeError("server closed the connection unexpectedly")

    monkeypatch.setattr(batching, "close_old_connections", broken_release)
    write = Recorder()
    batch = batch_of(write, database=True)
    batch.note(1)
    wait_until(lambda: write.written == [1] and len(releases) >= 2, "a write and two failed releases")
    thread = batch._thread
    assert thread is not None and thread.is_alive()
    batch.note(2)
    wait_until(lambda: write.written == [1, 2], "the second item, written after the failed releases")
    assert batch._thread is thread
