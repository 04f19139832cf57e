"""Upload and replace through the hub: multipart in, staged on disk, streamed to the sandbox.

Every refusal is checked for what a user would notice: a clear 4xx, no job row, and no file
left in the staging directory.
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from datetime import timedelta

import dramatiq
import pytest
from django.core.files.storage import storages
from django.utils import timezone

from conftest import run_queued_jobs
from flickr.fake.testing import tiny_jpeg, tiny_png
from jobs.models import Job, JobState
from jobs.uploads import staged_sweep

# Worker threads run the jobs, so the rows must be committed where they can see them.
pytestmark = pytest.mark.usefixtures("transactional_db")

URL = "/api/v1/flickr/rest"


def photo_file(data: bytes, name: str = "harbour.jpg") -> io.BytesIO:
    file = io.BytesIO(data)
    file.name = name
    return file


def send(client, *, target: str = "upload", params: dict | None = None, photo=None, **fields):
    user = fields.pop("user", None) or client.accounts[0]
    body: dict = {"user_id": str(user.user_id), "target": target, **fields}
    if params is not None:
        body["params"] = json.dumps(params)
    if photo is not None:
        body["photo"] = photo
    return client.api().post(URL, data=body, format="multipart")


def staged_files(upload_dir) -> list[str]:
    return sorted(os.listdir(upload_dir)) if upload_dir.exists() else []


def run(stub_broker, stub_worker, job_id: str) -> Job:
    run_queued_jobs(stub_broker, stub_worker)
    return Job.objects.get(pk=job_id)


def photo_id_of(job: Job) -> str:
    assert job.state == JobState.COMPLETED, job.error
    return job.result["flickr"]["photoid"]["_content"]


def test_an_upload_is_staged_queued_sent_and_then_found_by_search(
    world, stub_broker, stub_worker, upload_dir
):
    response = send(
        world.alpha,
        params={"title": "Harbour at dawn", "description": "Fog", "tags": ["hubtest", "two words"]},
        photo=photo_file(tiny_jpeg(), "IMG_0042.jpg"),
    )
    assert response.status_code == 202, response.content
    data = response.json()["data"]
    assert data["queue"] == "flickr_upload"
    assert staged_files(upload_dir) == [f"{data['job_id']}.upload"]

    job = run(stub_broker, stub_worker, data["job_id"])
    photo_id = photo_id_of(job)
    assert job.method == "upload"
    assert job.upload_content_type == "image/jpeg"
    assert staged_files(upload_dir) == [], "the staged file is removed once the job is done"

    photo = world.sandbox.app.state.library.photos[photo_id]
    assert (photo.title, photo.description) == ("Harbour at dawn", "Fog")
    assert set(photo.tags) >= {"hubtest", "two words"}

    search = world.alpha.api().post(
        URL,
        data={
            "method": "flickr.photos.search",
            "user_id": str(world.alpha.accounts[0].user_id),
            "params": {"user_id": world.alpha.accounts[0].nsid, "tags": "hubtest"},
        },
        format="json",
    )
    found = run(stub_broker, stub_worker, search.json()["data"]["job_id"])
    ids = [p["id"] for p in found.result["flickr"]["photos"]["photo"]]
    assert photo_id in ids


def test_the_status_of_an_upload_shows_its_queue_and_photo_id(world, stub_broker, stub_worker):
    job_id = send(world.alpha, photo=photo_file(tiny_png(), "a.png")).json()["data"]["job_id"]
    run(stub_broker, stub_worker, job_id)
    status = world.alpha.api().get(f"/api/v1/flickr/jobs/{job_id}").json()["data"]
    assert status["state"] == "completed"
    assert status["queue"] == "flickr_upload"
    assert status["method"] == "upload"
    assert status["returnvalue"]["flickr"]["photoid"]["_content"].isdigit()


def test_an_untitled_upload_is_titled_after_its_file_name_without_its_path(world, stub_broker, stub_worker):
    job_id = send(world.alpha, photo=photo_file(tiny_jpeg(), "../../etc/Sunset.jpg")).json()["data"]["job_id"]
    job = run(stub_broker, stub_worker, job_id)
    assert job.upload_filename == "Sunset.jpg"
    assert world.sandbox.app.state.library.photos[photo_id_of(job)].title == "Sunset"


def test_an_async_upload_returns_a_ticket_that_checkTickets_resolves(world, stub_broker, stub_worker):
    job_id = send(world.alpha, params={"async": 1}, photo=photo_file(tiny_jpeg())).json()["data"]["job_id"]
    job = run(stub_broker, stub_worker, job_id)
    assert job.state == JobState.COMPLETED
    ticket = job.result["flickr"]["ticketid"]["_content"]
    check = world.alpha.api().post(
        URL,
        data={
            "method": "flickr.photos.upload.checkTickets",
            "user_id": str(world.alpha.accounts[0].user_id),
            "params": {"tickets": ticket},
        },
        format="json",
    )
    checked = run(stub_broker, stub_worker, check.json()["data"]["job_id"])
    [entry] = checked.result["flickr"]["uploader"]["ticket"]
    assert str(entry["complete"]) == "1" and entry["photoid"]


def test_a_replace_swaps_the_file_and_returns_the_new_secrets(world, stub_broker, stub_worker, upload_dir):
    first = run(
        stub_broker, stub_worker, send(world.alpha, photo=photo_file(tiny_jpeg())).json()["data"]["job_id"]
    )
    photo_id = photo_id_of(first)
    old_secret = world.sandbox.app.state.library.photos[photo_id].secret

    response = send(
        world.alpha, target="replace", params={"photo_id": photo_id}, photo=photo_file(tiny_png(), "b.png")
    )
    assert response.status_code == 202, response.content
    assert response.json()["data"]["queue"] == "flickr_replace"
    job = run(stub_broker, stub_worker, response.json()["data"]["job_id"])
    answer = job.result["flickr"]["photoid"]
    assert answer["_content"] == photo_id
    assert answer["secret"] != old_secret
    assert world.sandbox.app.state.library.photos[photo_id].secret == answer["secret"]
    assert staged_files(upload_dir) == []


def test_a_url_of_the_upload_endpoint_picks_the_upload_target(world, stub_broker, settings):
    response = send(world.alpha, target="", url=settings.FLICKR_UPLOAD_URL, photo=photo_file(tiny_jpeg()))
    assert response.status_code == 202, response.content
    assert response.json()["data"]["queue"] == "flickr_upload"


# ------------------------------------------------------------------ refused at the door


def refused(response, status: int, code: str, upload_dir) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code
    assert Job.objects.count() == 0, "a refused request writes no job"
    assert staged_files(upload_dir) == [], "a refused request leaves no staged file"
    return json.dumps(body["error"])


def test_a_multipart_request_without_a_photo_is_refused(world, upload_dir):
    text = refused(send(world.alpha), 400, "ERR_INVALID_REQUEST", upload_dir)
    assert "photo is required" in text


def test_an_empty_file_is_refused(world, upload_dir):
    text = refused(send(world.alpha, photo=photo_file(b"")), 400, "ERR_INVALID_REQUEST", upload_dir)
    assert "photo" in text


def test_a_file_that_is_not_an_image_is_refused_with_415(world, upload_dir):
    fake = photo_file(b"%PDF-1.7\n" + b"x" * 20_000, "holiday.jpg")
    text = refused(send(world.alpha, photo=fake), 415, "ERR_UNSUPPORTED_MEDIA_TYPE", upload_dir)
    assert "not an image or a video" in text


def test_a_short_text_file_is_refused_with_415(world, upload_dir):
    refused(
        send(world.alpha, photo=photo_file(b"hello", "a.jpg")), 415, "ERR_UNSUPPORTED_MEDIA_TYPE", upload_dir
    )


def test_a_file_over_the_limit_is_refused_while_it_streams(world, upload_dir, settings):
    settings.UPLOAD_MAX_BYTES = 100_000
    big = photo_file(tiny_jpeg() + b"\0" * 300_000)
    text = refused(send(world.alpha, photo=big), 413, "ERR_PAYLOAD_TOO_LARGE", upload_dir)
    assert "100000" in text


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(world, upload_dir, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    response = world.alpha.api().generic(
        "POST",
        URL,
        data=b"--x\r\n",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(50 * 1024 * 1024),
    )
    refused(response, 413, "ERR_PAYLOAD_TOO_LARGE", upload_dir)


def test_a_second_photo_or_another_file_part_is_refused(world, upload_dir):
    body = {
        "user_id": str(world.alpha.accounts[0].user_id),
        "target": "upload",
        "photo": [photo_file(tiny_jpeg()), photo_file(tiny_jpeg(), "b.jpg")],
    }
    refused(
        world.alpha.api().post(URL, data=body, format="multipart"), 400, "ERR_INVALID_REQUEST", upload_dir
    )
    body = {
        "user_id": str(world.alpha.accounts[0].user_id),
        "target": "upload",
        "image": photo_file(tiny_jpeg()),
    }
    text = refused(
        world.alpha.api().post(URL, data=body, format="multipart"), 400, "ERR_INVALID_REQUEST", upload_dir
    )
    assert "'photo' part" in text


@pytest.mark.parametrize(
    "target, params, fragment",
    [
        ("replace", {}, "photo_id is required"),
        ("replace", {"photo_id": "abc"}, "photo_id is required"),
        ("upload", {"titel": "typo"}, "titel"),
        ("upload", {"photo_id": "1"}, "not upload fields"),
    ],
)
def test_fields_the_endpoint_does_not_take_are_refused(world, upload_dir, target, params, fragment):
    response = send(world.alpha, target=target, params=params, photo=photo_file(tiny_jpeg()))
    assert fragment in refused(response, 400, "ERR_INVALID_REQUEST", upload_dir)


def test_params_that_are_not_json_are_refused(world, upload_dir):
    body = {
        "user_id": str(world.alpha.accounts[0].user_id),
        "target": "upload",
        "params": "{title: nope",
        "photo": photo_file(tiny_jpeg()),
    }
    text = refused(
        world.alpha.api().post(URL, data=body, format="multipart"), 400, "ERR_INVALID_REQUEST", upload_dir
    )
    assert "params" in text


def test_a_photo_with_a_rest_call_is_refused(world, upload_dir):
    response = send(world.alpha, target="rest", method="flickr.test.echo", photo=photo_file(tiny_jpeg()))
    assert "only with target upload or replace" in refused(response, 400, "ERR_INVALID_REQUEST", upload_dir)


def test_another_clients_user_id_is_refused_and_its_file_dropped(world, upload_dir):
    response = send(world.alpha, user=world.beta.accounts[0], photo=photo_file(tiny_jpeg()))
    refused(response, 404, "ERR_TOKEN_NOT_FOUND", upload_dir)


def test_a_broker_outage_takes_back_the_job_and_its_file(world, upload_dir, monkeypatch):
    def broker_down(*args, **kwargs):
        raise dramatiq.errors.BrokerConnectionError("broker down")

    monkeypatch.setattr("jobs.tasks.flickr_upload.send_with_options", broker_down)
    refused(send(world.alpha, photo=photo_file(tiny_jpeg())), 503, "ERR_QUEUE_UNAVAILABLE", upload_dir)


# ------------------------------------------------------------------ Flickr's upload errors


def failed_upload(
    world, stub_broker, stub_worker, upload_dir, *, user=None, target="upload", params=None, photo=None
):
    response = send(
        world.alpha if user is None or user.client_id == world.alpha.model.pk else world.beta,
        user=user,
        target=target,
        params=params,
        photo=photo or photo_file(tiny_jpeg()),
    )
    assert response.status_code == 202, response.content
    job = run(stub_broker, stub_worker, response.json()["data"]["job_id"])
    assert job.state == JobState.FAILED, job.result
    assert staged_files(upload_dir) == [], "a failed job's file is removed too"
    return job


def test_a_cut_short_file_fails_with_flickr_code_3(world, stub_broker, stub_worker, upload_dir):
    job = failed_upload(world, stub_broker, stub_worker, upload_dir, photo=photo_file(tiny_jpeg()[:-2]))
    assert (job.error["code"], job.error["flickr_code"], job.error["class"]) == (
        "ERR_FLICKR_API",
        3,
        "caller",
    )
    assert job.attempts == 1


def test_an_account_at_its_upload_limit_fails_with_code_6(world, stub_broker, stub_worker, upload_dir):
    state = world.sandbox.app.state
    nsid = world.alpha.accounts[0].nsid
    state.set_upload_limit(nsid, 0)
    try:
        job = failed_upload(world, stub_broker, stub_worker, upload_dir)
    finally:
        state.set_upload_limit(nsid, 1000)
    assert job.error["flickr_code"] == 6
    assert "Upload limit" in job.error["message"]


def test_a_file_over_flickrs_limit_fails_with_code_8(world, stub_broker, stub_worker, upload_dir):
    app = world.sandbox.app
    saved, app.upload_max_bytes = app.upload_max_bytes, 64
    try:
        job = failed_upload(world, stub_broker, stub_worker, upload_dir, photo=photo_file(tiny_png(64, 64)))
    finally:
        app.upload_max_bytes = saved
    assert job.error["flickr_code"] == 8


def test_a_duplicate_with_dedup_check_fails_with_code_9_and_names_the_original(
    world, stub_broker, stub_worker, upload_dir
):
    image = tiny_png(3, 5, (1, 2, 3))
    first = run(
        stub_broker,
        stub_worker,
        send(world.alpha, params={"dedup_check": 1}, photo=photo_file(image)).json()["data"]["job_id"],
    )
    original = photo_id_of(first)
    job = failed_upload(
        world, stub_broker, stub_worker, upload_dir, params={"dedup_check": 1}, photo=photo_file(image)
    )
    assert job.error["flickr_code"] == 9
    assert job.error["details"] == {"duplicate_photo_id": original}


@pytest.mark.parametrize("code", [2, 4, 5])
def test_flickr_refusing_the_file_fails_the_job_with_its_code(
    world, stub_broker, stub_worker, upload_dir, code
):
    # The hub refuses missing, empty and unrecognised files itself; Flickr can still judge
    # otherwise, so its answer is shown as-is.
    world.sandbox.app.faults.add("flickr_error", method="upload", code=code)
    job = failed_upload(world, stub_broker, stub_worker, upload_dir)
    assert job.error["flickr_code"] == code
    assert job.attempts == 1


def test_replacing_an_unknown_photo_fails_with_code_1(world, stub_broker, stub_worker, upload_dir):
    job = failed_upload(
        world, stub_broker, stub_worker, upload_dir, target="replace", params={"photo_id": "1"}
    )
    assert job.error["flickr_code"] == 1


def test_a_read_only_token_cannot_upload_and_its_account_needs_relinking(
    world, stub_broker, stub_worker, upload_dir
):
    reader = world.alpha.accounts[1]
    job = failed_upload(world, stub_broker, stub_worker, upload_dir, user=reader)
    assert (job.error["flickr_code"], job.error["class"]) == (99, "relink")
    reader.refresh_from_db()
    assert reader.status == "needs_relink"


def test_a_server_error_is_retried_and_the_file_sent_again(world, stub_broker, stub_worker, upload_dir):
    app = world.sandbox.app
    app.faults.add("http_error", method="upload", count=1, status=503)
    before = len(app.state.library.photos)
    job = run(
        stub_broker, stub_worker, send(world.alpha, photo=photo_file(tiny_jpeg())).json()["data"]["job_id"]
    )
    assert job.state == JobState.COMPLETED
    assert job.attempts == 2
    assert app.counters.snapshot()["by_method"].get("upload") == 2
    assert len(app.state.library.photos) == before + 1, "the 503 stored nothing; the retry stored one photo"
    assert staged_files(upload_dir) == []


def test_an_upload_cut_off_after_sending_is_not_repeated(world, stub_broker, stub_worker, upload_dir):
    app = world.sandbox.app
    app.faults.add("drop_connection", method="upload", count=1)
    job = failed_upload(world, stub_broker, stub_worker, upload_dir)
    assert job.error["code"] == "ERR_FLICKR_OUTCOME_UNKNOWN"
    assert job.attempts == 1
    assert app.counters.snapshot()["by_method"].get("upload") == 1


def test_a_job_whose_staged_file_is_gone_fails_with_a_clear_error(world, stub_broker, upload_dir):
    response = send(world.alpha, photo=photo_file(tiny_jpeg()))
    job_id = response.json()["data"]["job_id"]
    os.remove(upload_dir / f"{job_id}.upload")  # before any worker runs
    worker = dramatiq.Worker(stub_broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        job = run(stub_broker, worker, job_id)
    finally:
        worker.stop()
    assert job.state == JobState.FAILED
    assert job.error["code"] == "ERR_UPLOAD_FILE_MISSING"
    assert "UPLOAD_STAGING_DIR" in job.error["message"]


# ------------------------------------------------------------------ the staging sweep


def test_the_sweep_removes_old_files_of_gone_or_finished_jobs_only(world, stub_broker, upload_dir, settings):
    settings.UPLOAD_ORPHAN_GRACE_SECONDS = 60
    queued = send(world.alpha, photo=photo_file(tiny_jpeg())).json()["data"]["job_id"]
    finished = send(world.alpha, photo=photo_file(tiny_jpeg())).json()["data"]["job_id"]
    Job.objects.filter(pk=finished).update(state=JobState.FAILED)
    storage = storages["uploads"]
    orphan = storage.save(f"{uuid.uuid4()}.upload", io.BytesIO(b"left behind"))
    storage.save("README.txt", io.BytesIO(b"not ours"))

    assert staged_sweep() == 0, "young files are left alone"
    old = time.time() - 3600
    for name in os.listdir(upload_dir):
        os.utime(upload_dir / name, (old, old))
    assert staged_sweep(now=timezone.now() + timedelta(seconds=1)) == 2
    assert set(staged_files(upload_dir)) == {"README.txt", f"{queued}.upload"}
    assert orphan not in staged_files(upload_dir)
