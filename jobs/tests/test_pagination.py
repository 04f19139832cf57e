"""`"paginate": true`: one job walks every page of a list method, resuming where it failed."""

from __future__ import annotations

import json

import pytest

from conftest import run_queued_jobs
from jobs.models import Job

pytestmark = pytest.mark.usefixtures("transactional_db")

URL = "/api/v1/flickr/rest"


def enqueue(client, account, method, params, **extra):
    body = {"method": method, "params": params, "user_id": str(account.user_id), "paginate": True, **extra}
    return client.api().post(URL, data=json.dumps(body), content_type="application/json")


def pages_asked(world, method: str) -> list[str]:
    return [
        c["args"].get("page") for c in world.sandbox.app.counters.calls(limit=1000) if c["method"] == method
    ]


def owned_photo_ids(world, nsid: str) -> set[str]:
    return {p.id for p in world.sandbox.app.state.library.photos.values() if p.owner == nsid}


def test_a_walk_gathers_every_page_into_one_result(world, stub_broker, stub_worker):
    account = world.alpha.accounts[0]
    response = enqueue(
        world.alpha, account, "flickr.people.getPhotos", {"user_id": account.nsid, "per_page": 5}
    )
    assert response.status_code == 202, response.content
    run_queued_jobs(stub_broker, stub_worker)

    job = Job.objects.get(pk=response.json()["data"]["job_id"])
    assert job.state == "completed"
    photos = job.result["flickr"]["photos"]
    expected = owned_photo_ids(world, account.nsid)
    assert len(expected) > 5, "the seeded library spans several pages"
    assert {p["id"] for p in photos["photo"]} == expected
    assert len(photos["photo"]) == len(expected), "no page fetched twice"
    assert int(photos["total"]) == len(expected)
    pages = -(-len(expected) // 5)
    assert job.result["flickr"]["pages_fetched"] == pages
    assert pages_asked(world, "flickr.people.getPhotos") == [str(n) for n in range(1, pages + 1)]
    assert job.attempts == 1, "pages are not attempts"
    status = world.alpha.api().get(f"/api/v1/flickr/jobs/{job.id}").json()["data"]
    assert status["progress"] == {"pages_done": pages, "pages_total": pages}


def test_a_walk_that_fails_part_way_resumes_from_the_failed_page(
    world, stub_broker, stub_worker, monkeypatch
):
    account = world.alpha.accounts[0]
    faults = world.sandbox.app.faults
    real_draw = faults.draw
    seen = []

    def page_two_fails_once(method, consumer_key):
        # The second call of the walk (page 2) meets a 503, once.
        if method == "flickr.people.getPhotos":
            seen.append(method)
            if len(seen) == 2:
                faults.add("http_error", method=method, count=1, status=503)
        return real_draw(method, consumer_key)

    monkeypatch.setattr(faults, "draw", page_two_fails_once)
    response = enqueue(
        world.alpha, account, "flickr.people.getPhotos", {"user_id": account.nsid, "per_page": 5}
    )
    run_queued_jobs(stub_broker, stub_worker)
    job = Job.objects.get(pk=response.json()["data"]["job_id"])
    assert job.state == "completed"
    asked = pages_asked(world, "flickr.people.getPhotos")
    assert asked[:3] == ["1", "2", "2"], "page 2 failed and was asked again; page 1 was not"
    assert {p["id"] for p in job.result["flickr"]["photos"]["photo"]} == owned_photo_ids(world, account.nsid)
    assert job.attempts == 2


def test_a_walk_past_the_item_limit_fails_clearly(world, stub_broker, stub_worker, settings):
    settings.PAGINATE_MAX_ITEMS = 6
    account = world.alpha.accounts[0]
    response = enqueue(
        world.alpha, account, "flickr.people.getPhotos", {"user_id": account.nsid, "per_page": 5}
    )
    run_queued_jobs(stub_broker, stub_worker)
    job = Job.objects.get(pk=response.json()["data"]["job_id"])
    assert job.state == "failed"
    assert job.error["code"] == "ERR_RESULT_TOO_LARGE"
    assert "PAGINATE_MAX_ITEMS" in job.error["message"]


@pytest.mark.parametrize(
    "method, params, fragment",
    [
        ("flickr.photos.getInfo", {"photo_id": "1"}, "paginate works with list methods"),
        ("flickr.photos.search", {"tags": "x", "page": 2}, "leave params.page out"),
    ],
)
def test_paginate_is_refused_where_it_cannot_work(world, stub_broker, method, params, fragment):
    response = enqueue(world.alpha, world.alpha.accounts[0], method, params)
    assert response.status_code == 400
    assert fragment in " ".join(response.json()["error"]["details"])
    assert Job.objects.count() == 0
