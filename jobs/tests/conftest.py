"""Fixtures of the jobs tests: a loopback receiver the hub is allowed to call (callbacks), and
a Redis that is down."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from flickr import ratelimit, shared_state
from jobs.tests.callback_receiver import Receiver


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.CALLBACK_RETRY_DELAY_MS = 1
    settings.CALLBACK_TIMEOUT_SECONDS = 5
    server = Receiver().start()
    yield server
    server.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_down() -> Iterator[str]:
    """The hub pointed at a Redis port where nothing listens, as when production's Redis dies."""
    url = f"redis://127.0.0.1:{closed_port()}/0"
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "redis-down-test",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
    embedded, ratelimit._backend = ratelimit._backend, None  # built afresh, on Redis
    shared_state.reset()
    try:
        with override_settings(REDIS_URL=url, CACHES=caches):
            yield url
    finally:
        ratelimit._backend = embedded
        shared_state.reset()
