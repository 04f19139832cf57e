"""Operators see every callback, each try with its answer, and can send one again."""

from __future__ import annotations

import json

import pytest

from conftest import run_queued_jobs
from jobs.models import CallbackDelivery
from jobs.tests.callback_receiver import Reply

pytestmark = pytest.mark.usefixtures("transactional_db")

CHANGELIST = "/admin/jobs/callbackdelivery/"


def delivered_job(world, stub_broker, stub_worker, receiver, settings, *, replies=()):
    receiver.script = list(replies)
    response = world.alpha.api().post(
        "/api/v1/flickr/rest",
        data=json.dumps(
            {
                "method": "flickr.test.echo",
                "user_id": str(world.alpha.accounts[0].user_id),
                "callback_url": receiver.url,
            }
        ),
        content_type="application/json",
    )
    job_id = response.json()["data"]["job_id"]
    run_queued_jobs(stub_broker, stub_worker)
    return CallbackDelivery.objects.get(job_id=job_id)


def test_the_list_and_the_detail_show_deliveries_and_their_attempts(
    admin_client, world, stub_broker, stub_worker, receiver, settings
):
    delivery = delivered_job(
        world, stub_broker, stub_worker, receiver, settings, replies=[Reply(500, body=b"nope")]
    )
    listing = admin_client.get(CHANGELIST)
    assert listing.status_code == 200
    assert str(delivery.job_id) in listing.content.decode()

    detail = admin_client.get(f"{CHANGELIST}{delivery.pk}/change/").content.decode()
    assert "delivered" in detail
    assert delivery.webhook_id in detail
    assert "HTTP 500" in detail and "nope" in detail  # the first try, and what the receiver said
    assert "&quot;job_id&quot;" in detail  # the body as sent


def test_resend_sends_the_same_callback_again_and_records_the_try(
    admin_client, world, stub_broker, stub_worker, receiver, settings
):
    delivery = delivered_job(world, stub_broker, stub_worker, receiver, settings)
    response = admin_client.post(
        CHANGELIST, {"action": "resend", "_selected_action": [str(delivery.pk)]}, follow=True
    )
    assert "1 callback(s) queued to be sent again" in response.content.decode()
    run_queued_jobs(stub_broker, stub_worker)

    first, second = receiver.wait_for(2)
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("delivered", 2)
    assert [a.status_code for a in delivery.history.all()] == [200, 200]


def test_resend_gives_a_failed_delivery_fresh_tries(
    admin_client, world, stub_broker, stub_worker, receiver, settings
):
    settings.CALLBACK_RETRY_ATTEMPTS = 1
    delivery = delivered_job(world, stub_broker, stub_worker, receiver, settings, replies=[Reply(500)])
    assert delivery.state == "failed"
    admin_client.post(CHANGELIST, {"action": "resend", "_selected_action": [str(delivery.pk)]})
    run_queued_jobs(stub_broker, stub_worker)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("delivered", 2)


def test_resend_of_a_delivery_still_waiting_is_refused_with_a_message(
    admin_client, world, stub_broker, stub_worker, receiver, settings
):
    delivery = delivered_job(world, stub_broker, stub_worker, receiver, settings)
    CallbackDelivery.objects.filter(pk=delivery.pk).update(state="pending")
    response = admin_client.post(
        CHANGELIST, {"action": "resend", "_selected_action": [str(delivery.pk)]}, follow=True
    )
    assert "not resent: it is waiting to be sent or being sent already" in response.content.decode()
    run_queued_jobs(stub_broker, stub_worker)
    assert len(receiver.requests) == 1
