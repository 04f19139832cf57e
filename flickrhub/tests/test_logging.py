"""Every log line is one JSON object, and secrets are redacted whatever carries them."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from flickrhub.logconfig import REDACTED as REDACTED_MARK
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


def test_authorization_headers_and_api_keys_in_text_are_redacted():
    text = redact_text(
        'sending headers {"Authorization": "OAuth oauth_consumer_key=\\"ck-123456\\", oauth_nonce=\\"n\\""} '
        "to https://api.flickr.com/services/rest/?api_key=ak-987654&method=flickr.test.echo"
    )
    assert "ck-123456" not in text and "ak-987654" not in text
    assert "method=flickr.test.echo" in text


def test_secrets_in_lists_of_dicts_and_consumer_keys_are_redacted():
    event = redact(
        None,
        "",
        {"event": "x", "calls": [{"consumer_key": "ck-1", "x-api-key": "k-2", "n": 1}], "token_status": "ok"},
    )
    assert event["calls"] == [{"consumer_key": "[redacted]", "x-api-key": "[redacted]", "n": 1}]
    assert event["token_status"] == "ok"


def test_a_secret_in_an_exception_is_redacted_from_its_traceback(logged):
    register_secret("tok-in-a-traceback-1")
    try:
        raise RuntimeError("call failed for https://x/?oauth_token=tok-in-a-traceback-1")
    except RuntimeError:
        structlog.get_logger("x").exception("call_failed")
    logging.getLogger("lib").exception("stdlib too", exc_info=RuntimeError("tok-in-a-traceback-1"))
    lines = logged()
    assert "tok-in-a-traceback-1" not in json.dumps(lines)
    assert "RuntimeError" in lines[0]["exception"]


pytestmark_job = pytest.mark.usefixtures("transactional_db")


@pytestmark_job
def test_a_jobs_log_lines_carry_the_request_job_user_method_queue_attempt_and_timing(
    world, stub_broker, stub_worker, logged
):
    from conftest import run_queued_jobs

    account = world.alpha.accounts[0]
    response = world.alpha.api().post(
        "/api/v1/flickr/rest",
        data=json.dumps({"method": "flickr.test.echo", "params": {}, "user_id": str(account.user_id)}),
        content_type="application/json",
        HTTP_X_REQUEST_ID="trace-42",
    )
    job_id = response.json()["data"]["job_id"]
    run_queued_jobs(stub_broker, stub_worker)

    by_event = {line["event"]: line for line in logged()}
    common = {"timestamp", "level", "event", "service", "env", "request_id"}
    job_fields = {"job_id", "user_id", "method", "queue", "attempt", "duration_ms"}
    assert common | {"job_id", "user_id", "method", "queue"} <= set(by_event["job_enqueued"])
    assert common | job_fields | {"outcome"} <= set(by_event["flickr_api_call"])
    assert common | job_fields <= set(by_event["job_completed"])
    for name in ("job_enqueued", "flickr_api_call", "job_completed"):
        assert by_event[name]["request_id"] == "trace-42", name
        assert by_event[name]["job_id"] == job_id, name
    assert by_event["flickr_api_call"]["outcome"] == "success"
    assert by_event["job_completed"]["attempt"] == 1
    assert by_event["job_completed"]["queue"] == "flickr_rest"
    assert by_event["job_completed"]["user_id"] == str(account.user_id)
    token, secret = world.tokens[str(account.user_id)]
    assert token not in json.dumps(logged()) and secret not in json.dumps(logged())


@pytestmark_job
def test_a_failed_job_logs_job_failed_with_its_error_class_and_duration(
    world, stub_broker, stub_worker, logged
):
    from conftest import run_queued_jobs

    world.alpha.api().post(
        "/api/v1/flickr/rest",
        data=json.dumps(
            {
                "method": "flickr.photos.getInfo",
                "params": {"photo_id": "1"},
                "user_id": str(world.alpha.accounts[0].user_id),
            }
        ),
        content_type="application/json",
    )
    run_queued_jobs(stub_broker, stub_worker)
    failed = [line for line in logged() if line["event"] == "job_failed"]
    assert len(failed) == 1
    assert failed[0]["error_class"] == "caller" and failed[0]["duration_ms"] >= 0
    call = next(line for line in logged() if line["event"] == "flickr_api_call")
    assert call["outcome"] == "fail"


def test_with_debug_on_the_lines_are_readable_console_text(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "import structlog; structlog.get_logger('demo').info('hello_event', oauth_token='tok-abcdef-1', n=3)",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if not k.endswith("_URL")},
            "DEBUG": "1",
            "FLICKRHUB_DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "hello_event" in line)
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
    assert "oauth_token=[redacted]" in line and "n=3" in line and "tok-abcdef-1" not in line


def test_among_thousands_of_registered_secrets_each_is_still_redacted():
    from flickrhub import logconfig

    saved = set(logconfig._known_secrets)
    try:
        for n in range(5000):  # a worker that has run jobs for 2,500 accounts
            register_secret(f"72157{n:012d}-{n:016x}")
        register_secret("72157000000000042-short")  # begins like another secret
        text = redact_text(
            "failed: x=72157000000004999-0000000000001387&y=1 and 72157000000000042-short, "
            "72157000000000042-000000000000002a"
        )
        assert "72157000000004999" not in text and "1387" not in text
        assert "short" not in text and "2a" not in text.split(",")[-1]
        assert text.count("[redacted]") == 3
        assert redact_text("nothing secret in flickr.test.echo") == "nothing secret in flickr.test.echo"
    finally:
        with logconfig._known_lock:
            logconfig._known_secrets.clear()
            logconfig._by_start = {}
            logconfig._few = ()
        for secret in saved:
            register_secret(secret)


@pytest.mark.parametrize(
    "text",
    [
        "x?OAUTH_TOKEN=7215-abcd&y",
        'OAuth oauth_signature="sig%3D"',
        "https://h/?API_KEY=ak-987654",
        "bearer fh_a1b2c3d4_ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "Fh key fh_a1b2c3d4_ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "secret whsec_ABCDEFGHIJKLMNOPQRSTUV",
        "AUTHORIZATION: OAuth realm",
    ],
)
def test_every_secret_pattern_is_still_searched_whatever_the_case(text):
    assert REDACTED_MARK in redact_text(text)
