"""Helpers for linking tests: acting as the person on the sandbox's authorize page."""

from __future__ import annotations

import socket
from typing import Any

import pytest


def sandbox_nsid(sandbox: Any, index: int = 0) -> str:
    return sandbox.app.state.users[index].nsid


def approve(sandbox: Any, oauth_token: str, *, perms: str = "write", index: int = 3) -> str:
    """The person approves on Flickr as seeded user `index`; returns the verifier Flickr shows
    (or puts in the callback). Index 3 is a person the `world` fixture has not linked."""
    return sandbox.app.state.approve(oauth_token, sandbox_nsid(sandbox, index), perms)


@pytest.fixture
def closed_port_url() -> str:
    """An address on this machine where nothing listens: Flickr unreachable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch):
    """Moves the clock pending attempts are timed by."""
    from accounts import pending

    real = pending.now

    def move(seconds: float) -> None:
        monkeypatch.setattr(pending, "now", lambda: real() + seconds)

    return move
