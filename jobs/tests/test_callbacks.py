"""Callbacks: a job's end POSTed to its callback URL, signed, retried, recorded — checked from
the receiver's side, with the independent `standardwebhooks` implementation."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from conftest import run_queued_jobs
from jobs.callbacks import deliveries_sweep, delivery_schedule
from jobs.models import CallbackDelivery, Job
from jobs.tests.callback_receiver import Reply

pytestmark = pytest.mark.usefixtures("transactional_db")

PAYLOAD_KEYS = {
    "job_id",
    "user_id",
    "queue",
    "state",
    "result",
    "error",
    "from_cache",
    "attempts_made",
    "max_attempts",
    "timestamp",
    "trace_id",
    "meta",
}


def enqueue(client, account, callback_url, *, method="flickr.test.echo", params=None, **extra):
    response = client.api().post(
        "/api/v1/flickr/rest",
        data=json.dumps(
            {
                "method": method,
                "params": params if params is not None else {"greeting": "hi"},
                "user_id": str(account.user_id),
                "callback_url": callback_url,
                **extra,
            }
        ),
        content_type="application/json",
        HTTP_X_REQUEST_ID="trace-cb-1",
    )
    assert response.status_code == 202, response.content
    return response.json()["data"]["job_id"]


def signing_secret(client) -> str:
    return client.api().get("/api/v1/flickr/callbacks/secret").json()["data"]["secret"]


def delivery_of(job_id) -> CallbackDelivery:
    return CallbackDelivery.objects.get(job_id=job_id)


def attempts_of(job_id) -> list[tuple[int | None, str]]:
    return [(a.status_code, a.error) for a in delivery_of(job_id).history.all()]


def test_a_completed_job_posts_the_originals_payload_signed_both_ways(
    world, stub_broker, stub_worker, receiver
):
    account = world.alpha.accounts[0]
    job_id = enqueue(
        world.alpha, account, receiver.url, callback_secret="legacy-shared-secret", meta={"k": 1}
    )
    run_queued_jobs(stub_broker, stub_worker)

    [request] = receiver.wait_for(1)
    # Standard Webhooks, verified by an independent implementation with the client's secret
    payload = Webhook(signing_secret(world.alpha)).verify(request.body, request.headers)
    # the original's X-Signature: hex HMAC-SHA256 of the exact body with the job's secret
    expected = hmac.new(b"legacy-shared-secret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Signature"] == expected
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Request-ID"] == "trace-cb-1"

    assert set(payload) == PAYLOAD_KEYS
    assert payload["job_id"] == job_id
    assert payload["user_id"] == str(account.user_id)
    assert payload["queue"] == "flickr_rest"
    assert payload["state"] == "completed"
    assert payload["result"]["stat"] == "ok"
    assert payload["result"]["greeting"] == {"_content": "hi"}
    assert payload["error"] is None
    assert payload["from_cache"] is False
    assert (payload["attempts_made"], payload["max_attempts"]) == (1, 3)
    assert payload["timestamp"].endswith("Z")
    assert payload["trace_id"] == "trace-cb-1"
    assert payload["meta"] == {"k": 1}

    delivery = delivery_of(job_id)
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert attempts_of(job_id) == [(200, "")]


def test_a_failed_job_posts_state_failed_with_its_error(world, stub_broker, stub_worker, receiver):
    job_id = enqueue(
        world.alpha,
        world.alpha.accounts[0],
        receiver.url,
        method="flickr.photos.getInfo",
        params={"photo_id": "1"},
    )
    run_queued_jobs(stub_broker, stub_worker)
    [request] = receiver.wait_for(1)
    payload = json.loads(request.body)
    assert set(payload) == PAYLOAD_KEYS
    assert payload["job_id"] == job_id
    assert payload["state"] == "failed"
    assert payload["result"] is None
    assert payload["error"]["code"] == "ERR_FLICKR_API"
    assert payload["error"]["flickr_code"] == 1
    assert "not found" in payload["error"]["message"].lower()
    assert payload["from_cache"] is False
    assert payload["attempts_made"] == 1
    assert payload["meta"] is None
    assert "X-Signature" not in request.headers  # no callback_secret on this job


def test_a_job_that_retried_calls_back_once_when_it_ends(world, stub_broker, stub_worker, receiver):
    world.sandbox.app.faults.add(kind="http_error", status=503, count=1)
    job_id = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)
    [request] = receiver.wait_for(1)
    assert json.loads(request.body)["attempts_made"] == 2
    assert CallbackDelivery.objects.filter(job_id=job_id).count() == 1


def test_a_500_is_retried_with_the_same_webhook_id_and_each_attempt_is_recorded(
    world, stub_broker, stub_worker, receiver
):
    receiver.script = [Reply(500, body=b"database down"), Reply(503), Reply(200)]
    job_id = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)

    requests = receiver.wait_for(3)
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert len({r.body for r in requests}) == 1
    secret = signing_secret(world.alpha)
    for request in requests:
        Webhook(secret).verify(request.body, request.headers)  # each try is signed afresh

    delivery = delivery_of(job_id)
    assert (delivery.state, delivery.attempts) == ("delivered", 3)
    assert attempts_of(job_id) == [(500, "HTTP 500"), (503, "HTTP 503"), (200, "")]
    first = delivery.history.first()
    assert first.response_excerpt == "database down"
    assert first.duration_ms is not None
    assert Job.objects.get(pk=job_id).state == "completed"


def test_delivery_gives_up_after_the_configured_attempts_and_the_job_is_unchanged(
    world, stub_broker, stub_worker, receiver, settings
):
    settings.CALLBACK_RETRY_ATTEMPTS = 2
    receiver.then = Reply(500)
    job_id = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)
    assert len(receiver.wait_for(2)) == 2
    delivery = delivery_of(job_id)
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("failed", 2, 500)
    assert Job.objects.get(pk=job_id).state == "completed"


def test_redirects_are_not_followed(world, stub_broker, stub_worker, receiver, settings):
    settings.CALLBACK_RETRY_ATTEMPTS = 1
    elsewhere = f"http://127.0.0.1:{receiver.port}/elsewhere"
    receiver.script = [Reply(302, headers={"Location": elsewhere})]
    job_id = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)
    assert [r.path for r in receiver.wait_for(1)] == ["/hook"]
    assert attempts_of(job_id) == [(302, f"HTTP 302: redirect to {elsewhere} not followed")]
    assert delivery_of(job_id).state == "failed"


def test_a_host_no_longer_allowed_is_refused_at_send_time_without_a_request(
    world, stub_broker, stub_worker, receiver, settings
):
    job_id = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    settings.CALLBACK_ALLOWED_HOSTS = []  # as if the name now resolved to a private address
    run_queued_jobs(stub_broker, stub_worker)
    assert receiver.requests == []
    delivery = delivery_of(job_id)
    assert delivery.state == "failed"
    assert delivery.attempts == 1  # refused for good, not retried
    [(status, error)] = attempts_of(job_id)
    assert status is None
    assert "non-public address" in error


def test_the_connection_goes_to_the_address_checked_not_a_fresh_lookup(
    world, stub_broker, stub_worker, receiver, settings, monkeypatch
):
    # `hooks.example.test` resolves (for the check) to the loopback receiver, allowed by name.
    # Were the HTTP library to resolve the name again, it would find nothing and fail.
    settings.CALLBACK_ALLOWED_HOSTS = ["hooks.example.test"]
    real = socket.getaddrinfo
    lookups = []

    def fake_getaddrinfo(host, *args, **kwargs):
        if host == "hooks.example.test":
            lookups.append(host)
            return real("127.0.0.1", *args, **kwargs)
        if host == "127.0.0.1":
            return real(host, *args, **kwargs)
        raise socket.gaierror("no such name")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    job_id = enqueue(world.alpha, world.alpha.accounts[0], f"http://hooks.example.test:{receiver.port}/hook")
    run_queued_jobs(stub_broker, stub_worker)
    [request] = receiver.wait_for(1)
    assert request.headers["Host"] == f"hooks.example.test:{receiver.port}"
    assert lookups == ["hooks.example.test"]  # once, by the check
    assert delivery_of(job_id).state == "delivered"


def test_an_unreachable_receiver_is_retried_and_recorded(world, stub_broker, stub_worker, receiver, settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    settings.CALLBACK_RETRY_ATTEMPTS = 2
    job_id = enqueue(world.alpha, world.alpha.accounts[0], f"http://127.0.0.1:{closed}/hook")
    run_queued_jobs(stub_broker, stub_worker)
    attempts = attempts_of(job_id)
    assert len(attempts) == 2
    assert all(status is None and "refused" in error.lower() for status, error in attempts)
    assert delivery_of(job_id).state == "failed"


def test_a_receiver_slower_than_the_timeout_is_an_attempt_that_timed_out(
    world, stub_broker, stub_worker, receiver, settings
):
    settings.CALLBACK_TIMEOUT_SECONDS = 0.3
    settings.CALLBACK_RETRY_ATTEMPTS = 1
    receiver.script = [Reply(200, delay=1.5)]
    job_id = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)
    [(status, error)] = attempts_of(job_id)
    assert status is None and "timed out" in error
    assert delivery_of(job_id).state == "failed"


def test_no_delivery_when_callbacks_are_off(world, stub_broker, stub_worker, receiver, settings):
    settings.CALLBACK_ENABLED = False
    job_id = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)
    assert Job.objects.get(pk=job_id).state == "completed"
    assert not CallbackDelivery.objects.exists()
    assert receiver.requests == []


def test_a_job_without_a_callback_url_sends_nothing(world, stub_broker, stub_worker, receiver):
    response = world.alpha.api().post(
        "/api/v1/flickr/rest",
        data=json.dumps({"method": "flickr.test.echo", "user_id": str(world.alpha.accounts[0].user_id)}),
        content_type="application/json",
    )
    assert response.status_code == 202
    run_queued_jobs(stub_broker, stub_worker)
    assert not CallbackDelivery.objects.exists()


def test_a_duplicate_message_sends_once(world, stub_broker, stub_worker, receiver):
    from jobs.callbacks import delivery_publish

    job_id = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)
    delivery_publish(delivery_of(job_id))  # as a sweeper's re-publish would
    run_queued_jobs(stub_broker, stub_worker)
    assert len(receiver.requests) == 1


def test_a_delivery_written_but_never_published_is_sent_by_the_sweeper(
    world, stub_broker, stub_worker, receiver
):
    job_id = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)
    receiver.wait_for(1)
    # as if the worker had died between writing the delivery and publishing it
    delivery = delivery_of(job_id)
    CallbackDelivery.objects.filter(pk=delivery.pk).update(
        state="pending", published_at=None, updated_at=timezone.now() - timedelta(minutes=5)
    )
    assert deliveries_sweep()["unpublished"] == 1
    assert deliveries_sweep()["unpublished"] == 0  # published once, not at every sweep
    run_queued_jobs(stub_broker, stub_worker)
    assert len(receiver.wait_for(2)) == 2


def test_a_long_retry_waits_in_the_database_until_the_sweeper_publishes_it(
    world, stub_broker, stub_worker, receiver, settings
):
    settings.CALLBACK_RETRY_DELAY_MS = 10 * 60_000  # well past the delayed-message limit
    receiver.script = [Reply(500)]
    job_id = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)
    delivery = delivery_of(job_id)
    assert delivery.state == "pending" and delivery.published_at is None
    assert delivery.next_attempt_at > timezone.now() + timedelta(minutes=4)
    assert deliveries_sweep()["unpublished"] == 0  # not due yet

    CallbackDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert deliveries_sweep()["unpublished"] == 1
    run_queued_jobs(stub_broker, stub_worker)
    assert delivery_of(job_id).state == "delivered"
    assert attempts_of(job_id) == [(500, "HTTP 500"), (200, "")]


def test_a_try_whose_worker_died_is_sent_again_after_its_lease(world, stub_broker, stub_worker, receiver):
    job_id = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)
    receiver.wait_for(1)
    # as if its worker had died mid-try: the row says `sending`, nothing was recorded, and the
    # message went with the worker
    delivery = delivery_of(job_id)
    delivery.history.all().delete()
    receiver.requests.clear()
    past = timezone.now() - timedelta(seconds=5)
    CallbackDelivery.objects.filter(pk=delivery.pk).update(
        state="sending", lease_until=past, published_at=past - timedelta(minutes=1)
    )
    assert deliveries_sweep()["abandoned"] == 1
    assert deliveries_sweep()["abandoned"] == 0  # published once, not at every sweep
    run_queued_jobs(stub_broker, stub_worker)
    assert len(receiver.wait_for(1)) == 1
    delivery = delivery_of(job_id)
    assert (delivery.state, delivery.attempts) == ("delivered", 2)
    assert attempts_of(job_id) == [(200, "")]


def test_an_ended_job_whose_delivery_was_never_written_gets_one_from_the_sweeper(
    world, stub_broker, stub_worker, receiver
):
    job_id = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)
    receiver.wait_for(1)
    CallbackDelivery.objects.all().delete()  # as if the worker died right after the job ended
    Job.objects.filter(pk=job_id).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert deliveries_sweep()["unscheduled"] == 1
    assert deliveries_sweep()["unscheduled"] == 0
    run_queued_jobs(stub_broker, stub_worker)
    assert len(receiver.wait_for(2)) == 2
    assert delivery_of(job_id).state == "delivered"


def test_scheduling_twice_for_one_end_writes_one_delivery(world, stub_broker, stub_worker, receiver):
    job_id = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)
    assert delivery_schedule(Job.objects.get(pk=job_id)) is None
    assert CallbackDelivery.objects.filter(job_id=job_id).count() == 1


def test_the_log_says_callback_sent_and_failed_with_ids_and_no_secret(
    world, stub_broker, stub_worker, receiver, caplog
):
    receiver.script = [Reply(500)]
    job_id = enqueue(
        world.alpha, world.alpha.accounts[0], receiver.url, callback_secret="legacy-shared-secret"
    )
    run_queued_jobs(stub_broker, stub_worker)
    secret = signing_secret(world.alpha)
    # the event dicts as the log renders them (redaction has run), from every thread
    events = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    out = "\n".join(json.dumps(e, default=str) for e in events)
    failed = [e for e in events if e["event"] == "callback_failed"]
    sent = [e for e in events if e["event"] == "callback_sent"]
    assert len(failed) == 1 and len(sent) == 1
    for event in failed + sent:
        assert event["job_id"] == job_id
        assert event["request_id"] == "trace-cb-1"
        assert event["host"] == "127.0.0.1"
    assert failed[0]["status_code"] == 500 and failed[0]["will_retry"] is True
    assert sent[0]["status_code"] == 200
    assert secret not in out and secret.removeprefix("whsec_") not in out
    assert "legacy-shared-secret" not in out


def test_a_tampered_body_fails_verification(world, stub_broker, stub_worker, receiver):
    enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)
    [request] = receiver.wait_for(1)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing_secret(world.alpha)).verify(request.body.replace(b"hi", b"ho"), request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing_secret(world.beta)).verify(request.body, request.headers)  # not beta's secret


def test_the_wait_between_tries_doubles_is_capped_and_honours_retry_after(settings):
    from jobs.callbacks import delivery_backoff_seconds

    settings.CALLBACK_RETRY_DELAY_MS = 1000
    settings.CALLBACK_RETRY_MAX_DELAY_MS = 10_000
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]:
        waits = [delivery_backoff_seconds(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits), (attempt, min(waits), max(waits))
    assert delivery_backoff_seconds(1, "7") >= 7
    assert delivery_backoff_seconds(1, "3600") == 10  # within the cap
    in_a_while = (timezone.now() + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert delivery_backoff_seconds(1, in_a_while) == 10
    assert delivery_backoff_seconds(1, "soon") <= 1  # unreadable: ignored


def test_an_embedded_restart_sends_what_was_waiting_or_in_hand(world, stub_broker, stub_worker, receiver):
    from jobs.callbacks import deliveries_recover_embedded

    first = enqueue(world.alpha, world.alpha.accounts[0], receiver.url)
    second = enqueue(world.alpha, world.alpha.accounts[1], receiver.url)
    run_queued_jobs(stub_broker, stub_worker)
    receiver.wait_for(2)
    receiver.requests.clear()
    # the process died with one delivery waiting and one mid-try; its in-memory queue is gone
    CallbackDelivery.objects.filter(job_id=first).update(state="pending")
    CallbackDelivery.objects.filter(job_id=second).update(state="sending", lease_until=timezone.now())
    stub_broker.flush_all()
    assert deliveries_recover_embedded() == 2
    run_queued_jobs(stub_broker, stub_worker)
    assert len(receiver.wait_for(2)) == 2
    assert {d.state for d in CallbackDelivery.objects.all()} == {"delivered"}
