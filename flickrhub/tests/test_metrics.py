"""Prometheus /metrics: restricted to allowed networks or a token, and it moves when jobs run."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from conftest import run_queued_jobs
from flickrhub import metrics


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def enqueue(world, method="flickr.test.echo", params=None):
    response = world.alpha.api().post(
        "/api/v1/flickr/rest",
        data=json.dumps(
            {"method": method, "params": params or {}, "user_id": str(world.alpha.accounts[0].user_id)}
        ),
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    return response.json()["data"]["job_id"]


def test_metrics_from_a_network_not_allowed_are_refused(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    response = client.get("/metrics")
    assert response.status_code == 403
    assert "METRICS_ALLOWED_NETWORKS" in response.content.decode()
    assert b"flickrhub_jobs" not in response.content


def test_metrics_with_a_token_need_the_token_outside_the_allowed_networks(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789").status_code == 200


def test_a_wrong_token_is_refused_even_from_an_allowed_network(client, settings):
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer guess").status_code == 401
    assert client.get("/metrics").status_code == 200  # loopback, no token: allowed network


def test_ipv4_mapped_addresses_count_as_their_ipv4_network(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["192.168.0.0/16"]
    assert metrics.access_problem(remote_addr="::ffff:192.168.1.9", authorization="") is None
    assert metrics.access_problem(remote_addr="garbage", authorization="")[0] == 403


@pytest.mark.usefixtures("transactional_db")
def test_after_jobs_run_the_job_and_flickr_call_metrics_have_moved(client, world, stub_broker, stub_worker):
    before = scrape(client)
    enqueue(world)
    enqueue(world)
    enqueue(world, method="flickr.photos.getInfo", params={"photo_id": "1"})  # Flickr: not found
    run_queued_jobs(stub_broker, stub_worker)
    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    rest = {"queue": "flickr_rest", "method_class": "read"}
    assert moved("flickrhub_jobs_total", state="enqueued", error_class="", **rest) == 3
    assert moved("flickrhub_jobs_total", state="completed", error_class="", **rest) == 2
    assert moved("flickrhub_jobs_total", state="failed", error_class="caller", **rest) == 1
    assert moved("flickrhub_job_latency_seconds_count", queue="flickr_rest", state="completed") == 2
    assert moved("flickrhub_flickr_call_duration_seconds_count", method_class="read", outcome="success") == 2
    assert moved("flickrhub_flickr_call_duration_seconds_count", method_class="read", outcome="fail") == 1
    # django-prometheus: HTTP and database metrics sit beside ours
    assert any(name.startswith("django_http_requests") for name, _ in after)
    assert any(name.startswith("django_db_execute") for name, _ in after)


@pytest.mark.usefixtures("transactional_db")
def test_a_retried_call_counts_as_retrying_then_completed(client, world, stub_broker, stub_worker):
    world.sandbox.app.faults.add(kind="http_error", status=503, count=1)
    before = scrape(client)
    enqueue(world)
    run_queued_jobs(stub_broker, stub_worker)
    after = scrape(client)
    labels = {"queue": "flickr_rest", "method_class": "read"}
    for state, error_class in (("retrying", "retry"), ("completed", "")):
        key = (
            "flickrhub_jobs_total",
            tuple(sorted({**labels, "state": state, "error_class": error_class}.items())),
        )
        assert after.get(key, 0) - before.get(key, 0) == 1


def test_queue_depths_are_read_from_the_broker_at_scrape_time(client, stub_broker):
    from flickrhub import queues
    from jobs.tasks import flickr_rest, flickr_upload

    flickr_rest.send("00000000-0000-0000-0000-000000000001")
    flickr_rest.send("00000000-0000-0000-0000-000000000002")
    flickr_upload.send_with_options(args=("00000000-0000-0000-0000-000000000003",), delay=60_000)
    queues.queue_depths(fresh=True)
    samples = scrape(client)
    assert value(samples, "flickrhub_queue_depth", queue="flickr_rest", kind="ready") == 2
    assert value(samples, "flickrhub_queue_depth", queue="flickr_upload", kind="delayed") == 1
    assert value(samples, "flickrhub_queue_depth", queue="flickr_replace", kind="ready") == 0
    assert value(samples, "flickrhub_broker_up") == 1


def test_the_metrics_the_cache_limiter_breaker_and_callbacks_will_record(client):
    key = "0123456789abcdef0123456789abcdef"
    before = scrape(client)
    metrics.cache_lookup(method="flickr.photos.search", hit=True)
    metrics.cache_lookup(method="flickr.photos.search", hit=False)
    metrics.coalesced_call()
    metrics.quota_remaining(consumer_key=key, remaining=3412)
    metrics.circuit_state(consumer_key=key, state="open")
    metrics.callback_delivery(outcome="sent")
    metrics.callback_delivery(outcome="failed")
    response = client.get("/metrics")
    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("flickrhub_cache_hits_total", method_class="read") == 1
    assert moved("flickrhub_cache_misses_total", method_class="read") == 1
    assert moved("flickrhub_coalesced_calls_total") == 1
    assert value(after, "flickrhub_quota_remaining", consumer_key="01234567") == 3412
    assert value(after, "flickrhub_circuit_state", consumer_key="01234567") == 2
    assert moved("flickrhub_callback_deliveries_total", outcome="sent") == 1
    assert moved("flickrhub_callback_deliveries_total", outcome="failed") == 1
    # a consumer key is a label by its first characters only
    assert key.encode() not in response.content


def test_circuit_state_refuses_an_unknown_state():
    with pytest.raises(KeyError):
        metrics.circuit_state(consumer_key="k" * 32, state="ajar")


def test_the_worker_exporter_serves_the_same_metrics_with_the_same_restriction(settings):
    import threading
    from http.server import ThreadingHTTPServer

    import requests

    server = ThreadingHTTPServer(("127.0.0.1", 0), metrics._WorkerMetricsHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        metrics.job_enqueued(queue="flickr_rest", method="flickr.test.echo")
        ok = requests.get(f"{base}/metrics", timeout=5)
        assert ok.status_code == 200 and "flickrhub_jobs_total" in ok.text
        assert requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
        assert requests.get(f"{base}/other", timeout=5).status_code == 404
        settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
        assert requests.get(f"{base}/metrics", timeout=5).status_code == 403
    finally:
        server.shutdown()
        server.server_close()


def test_registry_holds_no_metric_labelled_with_a_job_or_user(world):
    names = {m.name for m in REGISTRY.collect() if m.name.startswith("flickrhub_")}
    assert {
        "flickrhub_jobs",
        "flickrhub_job_latency_seconds",
        "flickrhub_flickr_call_duration_seconds",
    } <= names
    for family in REGISTRY.collect():
        if family.name.startswith("flickrhub_"):
            for sample in family.samples:
                assert not {"job_id", "user_id", "request_id"} & set(sample.labels)


def test_a_fresh_process_reports_every_queue_before_it_has_published(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from flickrhub.queues import queue_names; print(queue_names())",
        ],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if not k.endswith("_URL")},
            "FLICKRHUB_DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr
    assert "['flickr_callbacks', 'flickr_replace', 'flickr_rest', 'flickr_upload']" in result.stdout
