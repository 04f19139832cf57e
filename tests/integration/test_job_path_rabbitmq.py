"""The job path on real RabbitMQ and PostgreSQL: gunicorn accepts the call, a `rundramatiq`
worker runs it against the sandbox, the status endpoint returns the result."""

from __future__ import annotations

import time

import requests

from jobs.models import Job
from tests.integration.conftest import free_port, wait_for_state


def enqueue(hub, api_key, user_id, method="flickr.test.echo", params=None, **extra):
    return requests.post(
        f"{hub.url}/api/v1/flickr/rest",
        json={"method": method, "params": params or {}, "user_id": user_id, **extra},
        headers={"Authorization": f"Bearer {api_key}", "X-Request-ID": "it-trace-1"},
        timeout=15,
    )


def test_a_call_goes_through_rabbitmq_to_flickr_and_back(make_hub, world):
    hub = make_hub()
    hub.start_web()
    hub.start_worker("flickr_rest")
    user_id = str(world.alpha.accounts[0].user_id)

    started = time.monotonic()
    job_ids = []
    for i in range(50):
        response = enqueue(hub, world.alpha.key, user_id, params={"n": str(i)})
        assert response.status_code == 202, response.text
        job_ids.append(response.json()["data"]["job_id"])
    results = [wait_for_state(hub, world.alpha.key, job_id, {"completed", "failed"}) for job_id in job_ids]
    elapsed = time.monotonic() - started

    assert [r["state"] for r in results] == ["completed"] * 50
    assert [r["returnvalue"]["flickr"]["n"]["_content"] for r in results] == [str(i) for i in range(50)]
    # Each call reached Flickr once. (Counted by this test's arguments: a call of an earlier
    # test whose worker was killed mid-call may still finish in the sandbox after the reset.)
    ns = [
        c["args"].get("n")
        for c in world.sandbox.app.counters.calls(limit=1000)
        if c["method"] == "flickr.test.echo"
    ]
    assert sorted(n for n in ns if n is not None) == sorted(str(i) for i in range(50))
    print(f"\n50 jobs enqueued and completed end to end in {elapsed:.2f}s ({50 / elapsed:.1f} jobs/s)")

    # the request id followed the job into the worker's log lines
    worker_log = (hub.log_dir / "worker-flickr_rest.log").read_text()
    assert '"request_id": "it-trace-1"' in worker_log
    assert '"event": "flickr_api_call"' in worker_log

    # no token, token secret, consumer secret or API key in any log line
    from flickr.fake import SANDBOX_CONSUMER_SECRET

    logs = hub.logs()
    for secret in [*world.tokens[user_id], SANDBOX_CONSUMER_SECRET, world.alpha.key]:
        assert secret not in logs
        for r in results:
            assert secret not in str(r)


def test_a_worker_killed_mid_job_loses_nothing_and_the_job_completes_once(make_hub, world):
    hub = make_hub()
    hub.start_web()
    hub.start_worker("flickr_rest", threads=1)
    user_id = str(world.alpha.accounts[0].user_id)
    world.sandbox.app.faults.add(kind="latency", ms=3000, method="flickr.test.echo", count=1)

    job_id = enqueue(hub, world.alpha.key, user_id, params={"marker": "kill-me"}).json()["data"]["job_id"]
    wait_for_state(hub, world.alpha.key, job_id, {"running"}, timeout=30)
    time.sleep(0.5)  # the worker is now inside the slow Flickr call
    hub.kill_worker("flickr_rest")
    assert Job.objects.get(pk=job_id).state == "running"

    hub.start_worker("flickr_rest", threads=1)
    data = wait_for_state(hub, world.alpha.key, job_id, {"completed", "failed"}, timeout=60)
    assert data["state"] == "completed"
    assert data["attempts"] == 2  # the killed run, then the one that finished
    assert data["returnvalue"]["flickr"]["marker"]["_content"] == "kill-me"
    time.sleep(1.5)  # a duplicate run would show up here
    assert Job.objects.get(pk=job_id).attempts == 2


def test_a_publish_after_an_idle_period_longer_than_the_heartbeat_reconnects(make_hub, world, settings):
    # heartbeat=1: RabbitMQ drops the web process's idle publisher connection within seconds
    hub = make_hub(BROKER_URL=f"{settings.BROKER_URL.split('?')[0]}?heartbeat=1")
    hub.start_web()
    hub.start_worker("flickr_rest")
    user_id = str(world.alpha.accounts[0].user_id)
    first = enqueue(hub, world.alpha.key, user_id)
    assert first.status_code == 202
    time.sleep(6)
    second = enqueue(hub, world.alpha.key, user_id)
    assert second.status_code == 202, second.text
    for response in (first, second):
        assert wait_for_state(hub, world.alpha.key, response.json()["data"]["job_id"], {"completed"})


def test_an_unreachable_broker_is_a_503_and_no_job_is_left_behind(make_hub, world):
    hub = make_hub(BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F")
    hub.start_web()
    response = enqueue(hub, world.alpha.key, str(world.alpha.accounts[0].user_id))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "ERR_QUEUE_UNAVAILABLE"
    assert response.headers["Retry-After"]
    assert Job.objects.count() == 0


def test_a_wait_is_woken_by_a_worker_in_another_process(make_hub, world):
    # The waiting gunicorn process hears of the end through Redis, not by reading the row
    # again: with the safety-net look only every 10 s, every answer comes well before it.
    hub = make_hub(API_WAIT_POLL_MS="10000")
    hub.start_web()
    hub.start_worker("flickr_rest")
    user_id = str(world.alpha.accounts[0].user_id)

    def waited(n: str) -> float:
        started = time.monotonic()
        response = requests.post(
            f"{hub.url}/api/v1/flickr/rest?wait=30",
            json={"method": "flickr.test.echo", "params": {"w": n}, "user_id": user_id},
            headers={"Authorization": f"Bearer {world.alpha.key}"},
            timeout=40,
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["returnvalue"]["flickr"]["w"]["_content"] == n
        return time.monotonic() - started

    waited("warm-up")  # the worker's first job also waits for the worker to be ready
    took = [waited(str(i)) for i in range(6)]
    print(f"\n?wait answers in {', '.join(f'{t * 1000:.0f}' for t in took)} ms")
    assert max(took) < 5.0, took


def test_only_the_ends_someone_waits_for_are_announced_and_a_later_wait_is_woken(make_hub, world):
    """A worker announces a job's end on Redis only if a request waits for it: the enqueue's
    own `?wait`, or a status read with `?wait` that came while the job ran (the look every
    10 s would be far too late)."""
    import redis
    from django.conf import settings

    from jobs import job_ends

    hub = make_hub(API_WAIT_POLL_MS="10000")
    hub.start_web()
    hub.start_worker("flickr_rest")
    user_id = str(world.alpha.accounts[0].user_id)
    auth = {"Authorization": f"Bearer {world.alpha.key}"}
    listener = redis.Redis.from_url(settings.REDIS_URL).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(job_ends._channel())
    try:
        quiet = [
            enqueue(hub, world.alpha.key, user_id, params={"n": str(n)}).json()["data"]["job_id"]
            for n in range(5)
        ]
        for job_id in quiet:
            wait_for_state(hub, world.alpha.key, job_id, {"completed"})
        waited = requests.post(
            f"{hub.url}/api/v1/flickr/rest?wait=30",
            json={"method": "flickr.test.echo", "user_id": user_id},
            headers=auth,
            timeout=40,
        ).json()["data"]
        assert waited["state"] == "completed"

        world.sandbox.app.faults.add("latency", method="flickr.test.echo", count=1, ms=1500)
        slow = enqueue(hub, world.alpha.key, user_id).json()["data"]["job_id"]
        started = time.monotonic()
        status = requests.get(f"{hub.url}/api/v1/flickr/jobs/{slow}?wait=30", headers=auth, timeout=40)
        took = time.monotonic() - started
        assert status.json()["data"]["state"] == "completed"
        assert took < 5.0, f"the status wait answered after {took:.1f} s: the end was not announced"

        heard = set()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            message = listener.get_message(timeout=0.2)
            if message is not None:
                heard.add(message["data"].decode())
        assert heard == {waited["job_id"], slow}
    finally:
        listener.close()
