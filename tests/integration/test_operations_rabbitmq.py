"""Operations on the real services: a worker stopped by SIGTERM mid-job loses nothing and runs
nothing twice; /metrics moves after jobs run (web and the worker pool's exporter, multiprocess);
/readyz names a dependency that is down; logs reach an OBS sink end to end; the sweep lease in
Redis."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from flickrhub.models import JobAttempt, WorkerHeartbeat
from flickrhub.tests.conftest import closed_port, obs_receiver  # noqa: F401 (fixtures)
from jobs.models import Job
from tests.integration.conftest import free_port, wait_for_state


def enqueue(hub, world, params=None, request_id="it-ops-1"):
    response = requests.post(
        f"{hub.url}/api/v1/flickr/rest",
        json={
            "method": "flickr.test.echo",
            "params": params or {},
            "user_id": str(world.alpha.accounts[0].user_id),
        },
        headers={"Authorization": f"Bearer {world.alpha.key}", "X-Request-ID": request_id},
        timeout=15,
    )
    assert response.status_code == 202, response.text
    return response.json()["data"]["job_id"]


def sample(text: str, name: str, **labels) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def test_sigterm_mid_job_lets_the_job_finish_and_hands_back_what_was_not_started(make_hub, world):
    hub = make_hub()
    hub.start_web()
    hub.start_worker("flickr_rest", threads=1, shutdown_ms=10_000)
    world.sandbox.app.faults.add(kind="latency", ms=3000, method="flickr.test.echo", count=1)
    slow = enqueue(hub, world, params={"marker": "slow"})
    wait_for_state(hub, world.alpha.key, slow, {"running"}, timeout=30)
    deadline = time.monotonic() + 10
    while not WorkerHeartbeat.objects.filter(queues__contains="flickr_rest").exists():
        assert time.monotonic() < deadline, "the worker never wrote its heartbeat"
        time.sleep(0.2)
    waiting = enqueue(hub, world, params={"marker": "waiting"})  # arrives while the worker is busy
    time.sleep(0.3)

    started = time.monotonic()
    assert hub.stop_worker("flickr_rest") == 0
    stopped_after = time.monotonic() - started

    job = Job.objects.get(pk=slow)
    assert job.state == "completed" and job.attempts == 1  # finished within the wait, once
    assert Job.objects.get(pk=waiting).state == "queued"  # not started, handed back to the queue
    assert not WorkerHeartbeat.objects.exists()  # the stopped worker took its heartbeat with it
    logs = (hub.log_dir / "worker-flickr_rest.log").read_text()
    assert '"event": "worker_stopping"' in logs and '"jobs_in_hand": 1' in logs

    hub.start_worker("flickr_rest", threads=1)
    data = wait_for_state(hub, world.alpha.key, waiting, {"completed", "failed"}, timeout=60)
    assert data["state"] == "completed" and data["attempts"] == 1
    assert world.sandbox.app.counters.snapshot()["total"] == 2  # one Flickr call per job
    print(f"\nSIGTERM with a 3 s call in hand: the worker exited {stopped_after:.2f}s later, job completed")


def test_a_job_longer_than_the_shutdown_wait_is_requeued_and_completed_by_the_next_worker(make_hub, world):
    hub = make_hub()
    hub.start_web()
    hub.start_worker("flickr_rest", threads=1, shutdown_ms=1500)
    world.sandbox.app.faults.add(kind="latency", ms=6000, method="flickr.test.echo", count=1)
    job_id = enqueue(hub, world, params={"marker": "long"})
    wait_for_state(hub, world.alpha.key, job_id, {"running"}, timeout=30)
    time.sleep(0.3)

    started = time.monotonic()
    hub.stop_worker("flickr_rest")
    assert time.monotonic() - started < 5  # the wait is bounded, not the job's length
    assert Job.objects.get(pk=job_id).state == "running"
    logs = (hub.log_dir / "worker-flickr_rest.log").read_text()
    assert '"event": "worker_stopped_with_jobs_in_hand"' in logs

    hub.start_worker("flickr_rest", threads=1)
    data = wait_for_state(hub, world.alpha.key, job_id, {"completed", "failed"}, timeout=60)
    assert data["state"] == "completed"
    assert data["attempts"] == 2  # the interrupted run, then the one that finished
    assert data["returnvalue"]["flickr"]["marker"]["_content"] == "long"
    time.sleep(1.5)  # a duplicate run would show up here
    assert Job.objects.get(pk=job_id).attempts == 2
    assert list(JobAttempt.objects.filter(job_id=job_id).values_list("number", "outcome")) == [
        (2, "completed")
    ]


def test_metrics_move_after_jobs_run_on_web_and_on_the_worker_pools_exporter(make_hub, world):
    hub = make_hub()
    hub.start_web()
    ids = [enqueue(hub, world, params={"n": str(i)}) for i in range(3)]
    web = requests.get(f"{hub.url}/metrics", timeout=10)
    assert web.status_code == 200
    # gunicorn's two workers answered the three enqueues; multiprocess mode adds them up
    assert sample(web.text, "flickrhub_jobs_total", queue="flickr_rest", state="enqueued") == 3
    assert sample(web.text, "flickrhub_queue_depth", queue="flickr_rest", kind="ready") == 3
    assert sample(web.text, "flickrhub_broker_up") == 1
    assert requests.get(f"{hub.url}/readyz", timeout=10).json()["status"] == "ok"

    port = free_port()
    hub.start_worker("flickr_rest", metrics_port=port)
    for job_id in ids:
        assert wait_for_state(hub, world.alpha.key, job_id, {"completed"})["state"] == "completed"
    deadline = time.monotonic() + 20
    while True:
        try:
            worker = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert worker.status_code == 200
    assert sample(worker.text, "flickrhub_jobs_total", queue="flickr_rest", state="completed") == 3
    assert sample(worker.text, "flickrhub_flickr_call_duration_seconds_count", outcome="success") == 3
    assert (
        sample(worker.text, "flickrhub_job_latency_seconds_count", queue="flickr_rest", state="completed")
        == 3
    )


@pytest.mark.parametrize("dependency", ["database", "cache", "broker"])
def test_readyz_is_503_naming_a_dependency_at_a_closed_port(make_hub, world, dependency):
    port = free_port()
    override = {
        "database": {"DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/nothing"},
        "cache": {"REDIS_URL": f"redis://127.0.0.1:{port}/0"},
        "broker": {"BROKER_URL": f"amqp://guest:guest@127.0.0.1:{port}/%2F"},
    }[dependency]
    hub = make_hub(**override)
    hub.start_web()
    started = time.monotonic()
    response = requests.get(f"{hub.url}/readyz", timeout=15)
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == [dependency]
    assert body["checks"][dependency].startswith("unavailable")
    assert requests.get(f"{hub.url}/healthz", timeout=5).status_code == 200
    assert requests.get(f"{hub.url}/health", timeout=5).json() == {"status": "ok"}


def test_log_events_reach_the_obs_sink_from_web_and_worker_with_the_request_id(make_hub, world, obs_receiver):  # noqa: F811
    hub = make_hub(OBS_API_URL=obs_receiver.url, OBS_API_KEY="it-obs-key", OBS_FLUSH_INTERVAL_MS="100")
    hub.start_web()
    hub.start_worker("flickr_rest")
    job_id = enqueue(hub, world, request_id="it-obs-trace")
    data = wait_for_state(hub, world.alpha.key, job_id, {"completed"})
    assert data["returnvalue"]["observability"]["shipped"] is True
    for event in ("job_enqueued", "flickr_api_call", "job_completed"):
        record = obs_receiver.wait_for(event, timeout=10)
        assert record["context"]["request_id"] == "it-obs-trace", event
        assert record["context"]["job_id"] == job_id, event
    assert {r["headers"]["X-API-Key"] for r in obs_receiver.requests} == {"it-obs-key"}
    shipped = str(obs_receiver.records())
    for secret in world.tokens[str(world.alpha.accounts[0].user_id)]:
        assert secret not in shipped


def test_a_dead_obs_sink_does_not_fail_jobs(make_hub, world, closed_port):  # noqa: F811
    hub = make_hub(OBS_API_URL=f"http://127.0.0.1:{closed_port}/logs")
    hub.start_web()
    hub.start_worker("flickr_rest")
    ids = [enqueue(hub, world, params={"n": str(i)}) for i in range(5)]
    for job_id in ids:
        data = wait_for_state(hub, world.alpha.key, job_id, {"completed", "failed"})
        assert data["state"] == "completed"
        assert data["returnvalue"]["observability"]["shipped"] is False


def test_the_sweep_lease_lives_in_redis_with_its_expiry(settings):
    from django.core.cache import cache

    from flickrhub.leases import lease_acquire

    assert settings.CACHES["default"]["BACKEND"].startswith("django_redis")
    assert lease_acquire(name="it_sweep", seconds=30) is True
    assert lease_acquire(name="it_sweep", seconds=30) is False
    assert 0 < cache.ttl("lease:it_sweep") <= 30
    cache.delete("lease:it_sweep")


def test_gunicorn_drains_a_request_in_flight_when_stopped(make_hub, world):
    import json
    import os
    import signal
    import socket

    hub = make_hub()
    hub.start_web()
    body = json.dumps(
        {
            "method": "flickr.test.echo",
            "params": {"drain": "yes"},
            "user_id": str(world.alpha.accounts[0].user_id),
        }
    ).encode()
    head = (
        f"POST /api/v1/flickr/rest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {world.alpha.key}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", hub.port), timeout=15) as conn:
        conn.sendall(head + body[:10])  # the request is in flight: half its body sent
        time.sleep(0.5)
        os.kill(hub.web.pid, signal.SIGTERM)  # gunicorn's master: stop accepting, drain
        time.sleep(1.0)
        conn.sendall(body[10:])
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 202"), answer[:300]
    assert Job.objects.filter(params__drain="yes").count() == 1
    assert hub.web.wait(timeout=15) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{hub.url}/health", timeout=2)  # and it took no new connection
