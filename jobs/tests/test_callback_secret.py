"""The callback signing secret: read and rotated by its client, over the API and at a shell."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.management import CommandError, call_command
from standardwebhooks import Webhook, WebhookVerificationError

from conftest import run_queued_jobs
from jobs.models import CallbackSecret

URL = "/api/v1/flickr/callbacks/secret"


def read(client):
    response = client.api().get(URL)
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    return response.json()["data"]


def test_the_secret_is_created_on_first_read_and_stays_the_same(world):
    first = read(world.alpha)
    assert first["secret"].startswith("whsec_")
    assert len(base64.b64decode(first["secret"].removeprefix("whsec_"))) == 32
    assert first["rotated_at"] is None and first["previous_secret_valid_until"] is None
    assert read(world.alpha)["secret"] == first["secret"]


def test_each_client_has_its_own_secret_stored_encrypted(world):
    alpha, beta = read(world.alpha)["secret"], read(world.beta)["secret"]
    assert alpha != beta
    for row in CallbackSecret.objects.all():
        assert alpha not in row.secret_encrypted and beta not in row.secret_encrypted


def test_rotating_gives_a_new_secret_and_keeps_the_old_one_signing_for_a_while(world):
    old = read(world.alpha)["secret"]
    response = world.alpha.api().post(URL)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    rotated = response.json()["data"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != old
    assert rotated["rotated_at"] and rotated["previous_secret_valid_until"]
    assert read(world.alpha)["secret"] == rotated["secret"]


def test_the_secret_needs_the_api_key(world):
    from rest_framework.test import APIClient

    for response in (APIClient().get(URL), APIClient().post(URL)):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "ERR_UNAUTHORIZED"
        assert response.json()["data"] is None


def test_other_methods_answer_405_in_the_envelope(world):
    response = world.alpha.api().delete(URL)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "ERR_METHOD_NOT_ALLOWED"


@pytest.mark.usefixtures("transactional_db")
def test_after_a_rotation_callbacks_verify_with_the_new_and_the_old_secret(
    world, stub_broker, stub_worker, receiver
):
    old = read(world.alpha)["secret"]
    new = world.alpha.api().post(URL).json()["data"]["secret"]
    world.alpha.api().post(
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
    run_queued_jobs(stub_broker, stub_worker)
    [request] = receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(request.body, request.headers)
    Webhook(old).verify(request.body, request.headers)  # a receiver not yet switched still works
    with pytest.raises(WebhookVerificationError):
        Webhook(read(world.beta)["secret"]).verify(request.body, request.headers)


def test_the_command_prints_the_same_secret_and_rotates_it(world, capsys):
    call_command("callback_secret", "--client", "alpha")
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed == read(world.alpha)["secret"]

    call_command("callback_secret", "--client", "alpha", "--rotate")
    out = capsys.readouterr().out
    rotated = out.strip().splitlines()[-1]
    assert "Rotated" in out and rotated != printed
    assert read(world.alpha)["secret"] == rotated


def test_the_command_refuses_an_unknown_client(world):
    with pytest.raises(CommandError, match="No API client is named 'nobody'"):
        call_command("callback_secret", "--client", "nobody")
    assert not CallbackSecret.objects.exists()
