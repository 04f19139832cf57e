"""Fair use of the quota on the real stack: two worker processes on RabbitMQ, the dispatcher
elected through Redis, jobs parked in PostgreSQL."""

from __future__ import annotations

import time

import requests

from jobs.models import Job, JobState
from tests.integration.conftest import Hub


def _post(hub: Hub, key: str, path: str, body: dict) -> requests.Response:
    return requests.post(
        f"{hub.url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def test_a_light_client_is_served_in_its_turn_while_a_flood_drains_at_the_quota(make_hub, world):
    hub = make_hub(FLICKR_QUOTA_PER_HOUR="36000", FLICKR_QUOTA_BURST="1")  # 10 calls a second
    hub.start_web()
    hub.start_worker("flickr_rest", threads=8, processes=2)
    alpha, beta = world.alpha, world.beta
    flood = _post(
        hub,
        alpha.key,
        "/api/v1/flickr/batch",
        {
            "calls": [
                {
                    "method": "flickr.test.echo",
                    "user_id": str(alpha.accounts[0].user_id),
                    "params": {"n": f"f{i}"},
                }
                for i in range(200)
            ]
        },
    )
    assert flood.status_code == 202, flood.text
    time.sleep(2)  # the flood is ahead of everything now: 20 s of the key's calls

    waited = []
    for i in range(5):
        started = time.monotonic()
        answer = _post(
            hub,
            beta.key,
            "/api/v1/flickr/rest?wait=10",
            {
                "method": "flickr.test.echo",
                "user_id": str(beta.accounts[0].user_id),
                "params": {"n": f"b{i}"},
            },
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["state"] == "completed"
        waited.append(time.monotonic() - started)
        time.sleep(0.5)
    # In its turn: a few hundred milliseconds, not behind the flood's 20 seconds.
    assert max(waited) < 3, waited

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and Job.objects.exclude(state=JobState.COMPLETED).exists():
        time.sleep(0.5)
    assert Job.objects.filter(state=JobState.COMPLETED).count() == 205

    calls = sorted(
        c["ts"] for c in world.sandbox.app.counters.calls(limit=1000) if c["method"] == "flickr.test.echo"
    )
    assert len(calls) == 205
    # Never faster than the key's pace: any 11 consecutive calls span at least about a second.
    assert min(calls[i + 10] - calls[i] for i in range(len(calls) - 10)) > 0.85

    def usage_now() -> dict:
        return requests.get(
            f"{hub.url}/api/v1/usage", headers={"Authorization": f"Bearer {alpha.key}"}, timeout=10
        ).json()["data"]

    # The workers write their counts about once a second (jobs/usage.py).
    deadline = time.monotonic() + 5
    usage = usage_now()
    while usage["flickr_calls"] < 200 and time.monotonic() < deadline:
        time.sleep(0.25)
        usage = usage_now()
    assert usage["flickr_calls"] == 200 and usage["quota_waits"] > 100
    assert usage["waiting_for_quota_now"] == 0
