"""POST /api/v1/flickr/rest — accepting a Flickr call, and refusing a bad one cleanly."""

from __future__ import annotations

import json
import uuid

import pytest
from rest_framework.test import APIClient

from jobs import published_marks
from jobs.models import Job

URL = "/api/v1/flickr/rest"


def post(api: APIClient, body: object, **extra: str):
    return api.post(URL, data=json.dumps(body), content_type="application/json", **extra)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"request_id", "data", "error"}
    assert body["data"] is None
    assert body["error"]["code"] == code
    assert body["request_id"] == response["X-Request-ID"]
    return body


def test_a_call_is_accepted_with_the_original_envelope(world, stub_broker):
    user_id = str(world.alpha.accounts[0].user_id)
    response = post(
        world.alpha.api(),
        {"method": "flickr.test.echo", "params": {"foo": "bar"}, "user_id": user_id},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["error"] is None
    job_id = body["data"]["job_id"]
    assert uuid.UUID(job_id).version == 4
    assert body["data"]["queue"] == "flickr_rest"
    assert response["Location"].endswith(f"/api/v1/flickr/jobs/{job_id}")
    published_marks.flush()  # as the web process's marks thread does within half a second
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.method, job.params) == ("queued", "flickr.test.echo", {"foo": "bar"})
    assert job.published_at is not None
    assert stub_broker.queues["flickr_rest"].qsize() == 1


def test_the_callers_request_id_is_kept_and_stored_on_the_job(world, stub_broker):
    user_id = str(world.alpha.accounts[0].user_id)
    response = post(
        world.alpha.api(),
        {"method": "flickr.test.echo", "user_id": user_id},
        HTTP_X_REQUEST_ID="trace-42",
    )
    assert response["X-Request-ID"] == "trace-42"
    assert response.json()["request_id"] == "trace-42"
    assert Job.objects.get().request_id == "trace-42"


def test_a_url_of_a_flickr_endpoint_picks_the_target(world, stub_broker, settings):
    user_id = str(world.alpha.accounts[0].user_id)
    response = post(
        world.alpha.api(),
        {"method": "flickr.test.echo", "user_id": user_id, "url": settings.FLICKR_REST_URL},
    )
    assert response.status_code == 202
    assert Job.objects.get().target == "rest"


def test_target_and_url_that_disagree_are_refused(world, stub_broker, settings):
    user_id = str(world.alpha.accounts[0].user_id)
    body = assert_error(
        post(
            world.alpha.api(),
            {
                "method": "flickr.test.echo",
                "user_id": user_id,
                "target": "rest",
                "url": "https://up.flickr.com/services/upload/",
            },
        ),
        400,
        "ERR_INVALID_REQUEST",
    )
    assert any("disagree" in d for d in body["error"]["details"])


def test_every_problem_is_listed_at_once_and_nothing_is_written(world, stub_broker):
    body = assert_error(
        post(
            world.alpha.api(),
            {"params": [1, 2], "target": "ftp", "callback_url": 5, "meta": "x"},
        ),
        400,
        "ERR_INVALID_REQUEST",
    )
    details = " | ".join(body["error"]["details"])
    for expected in (
        "method is required",
        "user_id is required",
        "target must be rest|upload|replace",
        "params must be object",
        "meta must be object",
    ):
        assert expected in details
    assert Job.objects.count() == 0
    assert stub_broker.queues.get("flickr_rest") is None or stub_broker.queues["flickr_rest"].qsize() == 0


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"format": "xml"}, "set by the hub"),
        ({"oauth_token": "x"}, "set by the hub"),
        ({"nested": {"a": 1}}, "string, number, boolean"),
        ({"bad name!": 1}, "not a Flickr argument name"),
    ],
)
def test_params_the_hub_cannot_send_are_refused(world, params, fragment):
    user_id = str(world.alpha.accounts[0].user_id)
    body = assert_error(
        post(world.alpha.api(), {"method": "flickr.photos.search", "user_id": user_id, "params": params}),
        400,
        "ERR_INVALID_REQUEST",
    )
    assert fragment in " ".join(body["error"]["details"])
    assert Job.objects.count() == 0


def test_a_method_name_that_is_not_flickrs_is_refused(world):
    user_id = str(world.alpha.accounts[0].user_id)
    body = assert_error(
        post(world.alpha.api(), {"method": "rm -rf /", "user_id": user_id}), 400, "ERR_INVALID_REQUEST"
    )
    assert "Flickr method name" in body["error"]["details"][0]


def test_an_unknown_user_id_is_token_not_found(world):
    body = assert_error(
        post(world.alpha.api(), {"method": "flickr.test.echo", "user_id": str(uuid.uuid4())}),
        404,
        "ERR_TOKEN_NOT_FOUND",
    )
    assert body["error"]["message"] == "token_not_found"
    assert Job.objects.count() == 0


def test_another_clients_user_id_gets_the_same_answer_as_an_unknown_one(world):
    theirs = str(world.beta.accounts[0].user_id)
    unknown = str(uuid.uuid4())
    a = post(world.alpha.api(), {"method": "flickr.test.echo", "user_id": theirs}).json()["error"]
    b = post(world.alpha.api(), {"method": "flickr.test.echo", "user_id": unknown}).json()["error"]
    assert a["code"] == b["code"] == "ERR_TOKEN_NOT_FOUND"
    assert a["message"] == b["message"]
    assert Job.objects.count() == 0


def test_a_malformed_user_id_is_not_found_rather_than_a_crash(world):
    assert_error(
        post(world.alpha.api(), {"method": "flickr.test.echo", "user_id": "'; drop"}),
        404,
        "ERR_TOKEN_NOT_FOUND",
    )


def test_malformed_json_is_a_400_in_the_envelope(world):
    response = world.alpha.api().post(URL, data='{"method": ', content_type="application/json")
    body = assert_error(response, 400, "ERR_INVALID_REQUEST")
    assert "JSON" in body["error"]["message"]


def test_a_form_body_is_an_unsupported_media_type(world):
    response = world.alpha.api().post(
        URL, data="method=flickr.test.echo", content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 415, "ERR_UNSUPPORTED_MEDIA_TYPE")


def test_a_json_array_body_is_invalid(world):
    assert_error(post(world.alpha.api(), [1, 2, 3]), 400, "ERR_INVALID_REQUEST")


def test_a_body_over_the_limit_is_refused_before_it_is_read(world):
    user_id = str(world.alpha.accounts[0].user_id)
    big = {"method": "flickr.test.echo", "user_id": user_id, "params": {"text": "x" * (1024 * 1024)}}
    assert_error(post(world.alpha.api(), big), 413, "ERR_PAYLOAD_TOO_LARGE")
    assert Job.objects.count() == 0


def test_params_over_their_own_limit_are_invalid(world):
    user_id = str(world.alpha.accounts[0].user_id)
    body = {"method": "flickr.test.echo", "user_id": user_id, "params": {"text": "x" * 70_000}}
    assert_error(post(world.alpha.api(), body), 400, "ERR_INVALID_REQUEST")


def test_no_api_key_is_401_with_a_hint(world):
    response = post(APIClient(), {"method": "flickr.test.echo", "user_id": "x"})
    body = assert_error(response, 401, "ERR_UNAUTHORIZED")
    assert "Bearer" in body["error"]["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_or_revoked_key_is_401(world):
    api = APIClient()
    api.credentials(HTTP_X_API_KEY="fh_nothing_here")
    assert_error(post(api, {"method": "flickr.test.echo"}), 401, "ERR_UNAUTHORIZED")
    world.alpha.model.is_active = False
    world.alpha.model.save()
    assert_error(post(world.alpha.api(), {"method": "flickr.test.echo"}), 401, "ERR_UNAUTHORIZED")


def test_the_x_api_key_header_works_too(world, stub_broker):
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=world.alpha.key)
    user_id = str(world.alpha.accounts[0].user_id)
    assert post(api, {"method": "flickr.test.echo", "user_id": user_id}).status_code == 202


def test_upload_targets_need_a_file(world):
    user_id = str(world.alpha.accounts[0].user_id)
    body = assert_error(
        post(world.alpha.api(), {"method": "flickr.upload", "user_id": user_id, "target": "upload"}),
        400,
        "ERR_INVALID_REQUEST",
    )
    assert "multipart" in body["error"]["details"][0]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest",
        "http://10.0.0.1/",
        "ftp://example.com/x",
        "http://[::1]/",
    ],
)
def test_callback_urls_to_private_addresses_are_refused(world, url):
    user_id = str(world.alpha.accounts[0].user_id)
    body = assert_error(
        post(world.alpha.api(), {"method": "flickr.test.echo", "user_id": user_id, "callback_url": url}),
        400,
        "ERR_INVALID_REQUEST",
    )
    assert body["error"]["details"][0].startswith("callback_url")
    assert Job.objects.count() == 0


def test_the_callback_secret_is_stored_encrypted(world, stub_broker, settings):
    settings.CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    user_id = str(world.alpha.accounts[0].user_id)
    response = post(
        world.alpha.api(),
        {
            "method": "flickr.test.echo",
            "user_id": user_id,
            "callback_url": "http://127.0.0.1:9/hook",
            "callback_secret": "hush-hush-secret",
            "meta": {"order": 7},
        },
    )
    assert response.status_code == 202
    job = Job.objects.get()
    assert "hush-hush-secret" not in job.callback_secret_encrypted
    assert job.meta == {"order": 7}


def test_unknown_paths_under_the_api_answer_in_the_envelope(world):
    response = world.alpha.api().get("/api/v1/nothing-here")
    assert_error(response, 404, "ERR_NOT_FOUND")
