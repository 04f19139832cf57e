"""`manage.py fake_flickr`: what it prints and how it runs and stops."""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import threading

import pytest
import requests

from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, FakeFlickr
from flickr.management.commands.fake_flickr import Command, banner, quota_value


def test_the_banner_tells_a_developer_how_to_point_a_hub_at_the_sandbox() -> None:
    app = FakeFlickr(seed=1)

    text = banner(app, "http://127.0.0.1:8099")

    assert "http://127.0.0.1:8099" in text
    assert f"consumer key:                   {SANDBOX_CONSUMER_KEY}" in text
    assert f"consumer secret (sandbox only): {SANDBOX_CONSUMER_SECRET}" in text
    assert app.state.demo_user.nsid in text
    for line in (
        "FLICKR_REST_URL=http://127.0.0.1:8099/services/rest/",
        "FLICKR_OAUTH_REQUEST_TOKEN_URL=http://127.0.0.1:8099/services/oauth/request_token",
        "FLICKR_OAUTH_AUTHORIZE_URL=http://127.0.0.1:8099/services/oauth/authorize",
        "FLICKR_OAUTH_ACCESS_TOKEN_URL=http://127.0.0.1:8099/services/oauth/access_token",
    ):
        assert f"  {line}\n" in text


def test_the_banner_never_shows_a_token_secret() -> None:
    app = FakeFlickr(seed=1)
    secrets = [app.state.demo_token(perms)[1] for perms in ("read", "write", "delete")]

    text = banner(app, "http://127.0.0.1:8099")

    assert not any(secret in text for secret in secrets)


@pytest.mark.parametrize(("raw", "expected"), [("3600", 3600), ("0", 0), ("unlimited", None), ("None", None)])
def test_quota_accepts_a_number_or_unlimited(raw: str, expected: int | None) -> None:
    assert quota_value(raw) == expected


def test_a_negative_quota_is_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        quota_value("-1")


def test_the_command_serves_until_sigterm() -> None:
    out = io.StringIO()
    seen: dict[str, int] = {}

    def visit_then_stop() -> None:
        try:
            url = re.search(r"Flickr sandbox on (\S+)", out.getvalue()).group(1)  # type: ignore[union-attr]
            params = {"method": "flickr.test.echo", "api_key": SANDBOX_CONSUMER_KEY}
            seen["status"] = requests.get(f"{url}/services/rest/", params=params, timeout=5).status_code
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    timer = threading.Timer(0.3, visit_then_stop)
    timer.start()
    Command(stdout=out).handle(
        host="127.0.0.1", port=0, seed=1, latency_ms=0.0, quota_per_hour=None, no_control=False
    )
    timer.join()

    assert seen == {"status": 200}
    assert out.getvalue().rstrip().endswith("Flickr sandbox stopped.")
