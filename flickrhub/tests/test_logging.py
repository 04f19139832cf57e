"""Every log line is one JSON object, and secrets are redacted whatever carries them."""

from __future__ import annotations

import json
import logging

import structlog

from flickrhub.logconfig import redact, redact_text, register_secret


def test_secret_keys_are_redacted_wherever_they_nest():
    event = redact(
        None,
        "",
        {
            "event": "x",
            "oauth_token": "abc",
            "headers": {"Authorization": "Bearer fh_abcdef12_xxxxxxxxxxxxxxxxxxxxxxxx", "Accept": "*/*"},
            "api_key": "k",
            "user_id": "u-1",
        },
    )
    assert event["oauth_token"] == "[redacted]"
    assert event["headers"]["Authorization"] == "[redacted]"
    assert event["headers"]["Accept"] == "*/*"
    assert event["api_key"] == "[redacted]"
    assert event["user_id"] == "u-1"


def test_secrets_inside_free_text_are_redacted():
    text = redact_text(
        "POST /services/rest/?oauth_token=7215-abcd&oauth_signature=xyz%3D&method=flickr.test.echo "
        'OAuth oauth_token="7215-abcd", key fh_a1b2c3d4_ABCDEFGHIJKLMNOPQRSTUVWXYZ'
    )
    assert "7215-abcd" not in text and "xyz%3D" not in text and "ABCDEFGHIJKLMNOP" not in text
    assert "method=flickr.test.echo" in text


def test_a_registered_secret_is_redacted_from_any_line(capsys):
    register_secret("very-secret-token-value")
    logging.getLogger("some.library").warning("connection failed: very-secret-token-value in url")
    structlog.get_logger("x").info("thing_happened", detail="has very-secret-token-value inside")
    out = capsys.readouterr().out
    assert "very-secret-token-value" not in out
    for line in out.strip().splitlines():
        record = json.loads(line)
        assert {"timestamp", "level", "event", "service", "env"} <= set(record)
