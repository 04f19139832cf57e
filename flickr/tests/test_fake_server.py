"""SandboxServer: starting, reaching and stopping the sandbox."""

from __future__ import annotations

import pytest
import requests

from flickr.fake import FakeFlickr, SandboxServer


def test_a_started_server_answers_on_its_url() -> None:
    server = SandboxServer(FakeFlickr(), port=0).start()
    try:
        home = requests.get(f"{server.url}/", timeout=5)
    finally:
        server.stop()

    assert server.url.startswith("http://127.0.0.1:")
    assert home.status_code == 200
    assert "Flickr sandbox" in home.text


def test_a_stopped_server_no_longer_answers() -> None:
    with SandboxServer(FakeFlickr()) as server:
        url = server.url

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/", timeout=2)


def test_a_port_already_taken_is_an_os_error_not_an_exit() -> None:
    with SandboxServer(FakeFlickr()) as first:
        with pytest.raises(OSError, match="cannot listen"):
            SandboxServer(FakeFlickr(), port=first.port).start()


def test_unknown_paths_are_404() -> None:
    with SandboxServer(FakeFlickr()) as server:
        assert requests.get(f"{server.url}/services/nope", timeout=5).status_code == 404
