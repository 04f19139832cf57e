"""Fixtures shared by the sandbox's tests: a seeded sandbox, served on a free port."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from flickr.fake import FakeFlickr, SandboxServer


class Clock:
    """A clock the test moves by hand; starts at the real time so client timestamps agree."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app() -> FakeFlickr:
    return FakeFlickr(seed=1)


@pytest.fixture
def server(app: FakeFlickr) -> Iterator[SandboxServer]:
    server = SandboxServer(app, port=0).start()
    yield server
    server.stop()
