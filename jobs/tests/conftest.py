"""Fixtures for callback tests: a loopback receiver the hub is allowed to call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jobs.tests.callback_receiver import Receiver


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.CALLBACK_RETRY_DELAY_MS = 1
    settings.CALLBACK_TIMEOUT_SECONDS = 5
    server = Receiver().start()
    yield server
    server.stop()
