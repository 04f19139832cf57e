"""The external log sink (OBS): events shipped in batches from a background thread, redacted,
and never at the cost of a job — a dead or hung sink only loses log shipping."""

from __future__ import annotations

import json
import time

import pytest
import structlog

from conftest import run_queued_jobs
from flickrhub import obs

pytestmark = pytest.mark.usefixtures("transactional_db")


def enqueue(world, account=None, method="flickr.test.echo", params=None):
    account = account or world.alpha.accounts[0]
    response = world.alpha.api().post(
        "/api/v1/flickr/rest",
        data=json.dumps({"method": method, "params": params or {}, "user_id": str(account.user_id)}),
        content_type="application/json",
        HTTP_X_REQUEST_ID="obs-trace-1",
    )
    assert response.status_code == 202, response.content
    return response.json()["data"]["job_id"]


def job(world, job_id):
    return world.alpha.api().get(f"/api/v1/flickr/jobs/{job_id}").json()["data"]


@pytest.fixture
def sink_settings(settings):
    settings.OBS_API_KEY = "obs-key-123456"
    settings.OBS_FLUSH_INTERVAL_MS = 50
    settings.OBS_REPORT_WAIT_MS = 1000
    yield settings
    sink = obs.get_sink()
    if sink is not None:
        sink.close(timeout=10)  # its thread may still wait on a hung sink: let it finish


def test_without_obs_api_url_nothing_is_shipped_and_the_job_says_so(
    world, stub_broker, stub_worker, settings
):
    settings.OBS_API_URL = ""
    job_id = enqueue(world)
    run_queued_jobs(stub_broker, stub_worker)
    assert obs.get_sink() is None
    assert job(world, job_id)["returnvalue"]["observability"] == {
        "ok": False,
        "shipped": False,
        "reason": "disabled",
    }


def test_a_jobs_events_reach_the_sink_in_batches_and_the_job_reports_its_call_shipped(
    world, stub_broker, stub_worker, sink_settings, obs_receiver
):
    sink_settings.OBS_API_URL = obs_receiver.url
    job_id = enqueue(world, params={"hello": "world"})
    run_queued_jobs(stub_broker, stub_worker)

    data = job(world, job_id)
    assert data["state"] == "completed"
    report = data["returnvalue"]["observability"]
    assert report["ok"] is True and report["shipped"] is True and report["status"] == 202
    assert "body" not in report  # only with OBS_DEBUG

    call = obs_receiver.wait_for("flickr_api_call")
    assert call["log_id"] == report["log_id"]
    assert call["schema_version"] == 1
    assert call["category"] == "flickr.api"
    assert call["service"] == "flickrhub" and call["environment"] == "local"
    assert call["context"]["job_id"] == job_id
    assert call["context"]["request_id"] == "obs-trace-1"
    assert call["context"]["method"] == "flickr.test.echo"
    assert call["payload"]["outcome"] == "success"
    obs_receiver.wait_for("job_completed")
    assert all(r["headers"]["X-API-Key"] == "obs-key-123456" for r in obs_receiver.requests)
    assert all(isinstance(r["body"], list) for r in obs_receiver.requests)


def test_shipped_events_are_redacted_like_stdout(sink_settings, obs_receiver, logged):
    sink_settings.OBS_API_URL = obs_receiver.url
    structlog.get_logger("test").info(
        "thing_happened", oauth_token="tok-secret-1", detail="url?oauth_signature=sig-secret-2&x=1"
    )
    record = obs_receiver.wait_for("thing_happened")
    shipped = json.dumps(record)
    assert "tok-secret-1" not in shipped and "sig-secret-2" not in shipped
    assert record["payload"]["oauth_token"] == "[redacted]"
    assert "obs-key-123456" not in json.dumps(logged())


def test_obs_debug_logs_the_sinks_answer_and_reports_its_body(
    world, stub_broker, stub_worker, sink_settings, obs_receiver, logged
):
    sink_settings.OBS_DEBUG = True
    sink_settings.OBS_API_URL = obs_receiver.url
    job_id = enqueue(world)
    run_queued_jobs(stub_broker, stub_worker)
    assert job(world, job_id)["returnvalue"]["observability"]["body"] == '{"accepted": true}'
    answers = [line for line in logged() if line["event"] == "obs_sink_answer"]
    assert answers and answers[0]["status"] == 202
    # the sink's own lines are not shipped back to it
    assert all(r["event"] != "obs_sink_answer" for r in obs_receiver.records())


def test_a_dead_sink_fails_no_job_and_the_job_says_its_event_was_not_shipped(
    world, stub_broker, stub_worker, sink_settings, closed_port, logged
):
    sink_settings.OBS_API_URL = f"http://127.0.0.1:{closed_port}/logs"
    job_ids = [enqueue(world, params={"n": str(i)}) for i in range(3)]
    run_queued_jobs(stub_broker, stub_worker)
    for job_id in job_ids:
        data = job(world, job_id)
        assert data["state"] == "completed"
        report = data["returnvalue"]["observability"]
        assert report["shipped"] is False
        # the sink's refusal if it came within the wait, else "still queued" (never a wait
        # once a batch has failed)
        assert report.get("error") == "ConnectionError" or report.get("queued") is True, report
    failed = [line for line in logged() if line["event"] == "obs_batch_failed"]
    assert failed and failed[0]["level"] == "warning"


def test_a_hung_sink_slows_no_job_and_its_dropped_events_are_counted_and_logged(
    world, stub_broker, stub_worker, sink_settings, silent_sink, logged
):
    from prometheus_client import REGISTRY

    dropped_before = REGISTRY.get_sample_value("flickrhub_obs_events_total", {"outcome": "dropped"}) or 0
    sink_settings.OBS_API_URL = silent_sink
    sink_settings.OBS_TIMEOUT_SECONDS = 1.5
    sink_settings.OBS_BUFFER_SIZE = 5
    sink_settings.OBS_REPORT_WAIT_MS = 200

    started = time.monotonic()
    job_ids = [enqueue(world, params={"n": str(i)}) for i in range(10)]
    run_queued_jobs(stub_broker, stub_worker)
    elapsed = time.monotonic() - started

    states = [job(world, job_id)["state"] for job_id in job_ids]
    assert states == ["completed"] * 10
    # One job may wait OBS_REPORT_WAIT_MS before the sink is judged slow; none waits for the
    # sink's 1.5 s timeout.
    assert elapsed < 1.5, f"10 jobs took {elapsed:.2f}s with a hung sink"
    reports = [job(world, job_id)["returnvalue"]["observability"] for job_id in job_ids]
    assert all(r["shipped"] is False for r in reports)

    sink = obs.get_sink()
    assert sink is not None and sink.dropped > 0
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        if any(line["event"] == "obs_events_dropped" for line in logged()):
            break
        time.sleep(0.1)
    dropped_lines = [line for line in logged() if line["event"] == "obs_events_dropped"]
    assert dropped_lines and dropped_lines[0]["count"] > 0
    assert REGISTRY.get_sample_value("flickrhub_obs_events_total", {"outcome": "dropped"}) > dropped_before


def test_submit_never_blocks_even_when_the_buffer_is_full():
    sink = obs.ObsSink(url="http://127.0.0.1:9/none", api_key="", service="s", environment="e", buffer_size=3)
    started = time.monotonic()
    kept = [sink.submit({"event": "x", "n": i}, track=True) for i in range(1000)]
    assert time.monotonic() - started < 0.5
    assert sum(1 for d in kept if d is not None) <= 3 + 100  # what fit, plus what was shipped meanwhile
    assert sink.dropped >= 1000 - 103
    sink.close(timeout=5)
