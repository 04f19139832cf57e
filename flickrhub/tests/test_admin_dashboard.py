"""The admin's front page tells an operator how the hub is doing, with links to the lists; the
job admin finds a job by id, request id or user_id and shows its whole history."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from accounts.models import AccountStatus, FlickrAccount
from flickrhub.models import JobAttempt, WorkerHeartbeat
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = User.objects.create_superuser("op", "op@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


def make_job(world, *, state="completed", minutes_ago=5, error_class=None, request_id="", target="rest"):
    now = timezone.now()
    return Job.objects.create(
        client=world.alpha.model,
        account=world.alpha.accounts[0],
        method="flickr.photos.search",
        params={"text": "harbour"},
        state=state,
        target=target,
        attempts=1,
        request_id=request_id,
        created_at=now - timedelta(minutes=minutes_ago),
        started_at=now - timedelta(minutes=minutes_ago) + timedelta(seconds=1),
        finished_at=now - timedelta(minutes=minutes_ago, seconds=-2)
        if state in ("completed", "failed")
        else None,
        error={"code": "ERR_X", "message": "went wrong", "class": error_class} if error_class else None,
    )


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_the_front_page_shows_queues_workers_jobs_failures_keys_and_relinks(operator, world, stub_broker):
    from jobs.tasks import flickr_rest

    flickr_rest.send(str(uuid.uuid4()))
    flickr_rest.send(str(uuid.uuid4()))
    WorkerHeartbeat.objects.create(
        worker_id="host-a:11", hostname="host-a", pid=11, queues=["flickr_rest"], threads=8, in_progress=3
    )
    WorkerHeartbeat.objects.create(
        worker_id="host-b:12",
        hostname="host-b",
        pid=12,
        queues=["flickr_upload"],
        threads=2,
        last_seen=timezone.now() - timedelta(minutes=5),
    )
    for _ in range(3):
        make_job(world)
    make_job(world, state="failed", error_class="relink")
    make_job(world, state="queued")
    make_job(world, minutes_ago=120)  # older than the hour: not counted
    FlickrAccount.objects.filter(pk=world.alpha.accounts[1].pk).update(status=AccountStatus.NEEDS_RELINK)

    from flickrhub import queues

    queues.queue_depths(fresh=True)
    page = text(operator.get("/admin/"))

    assert "Queues and workers" in page
    assert re.search(r"flickr_rest</a></th> <td>2</td>", page), page
    assert "host-a:11: seen" in page and "3/8 busy" in page
    assert "host-b:12: <strong>silent</strong>" in page
    assert "completed: 3" in page and "failed: 1" in page and "queued: 1" in page
    assert "relink</a></th><td>1</td><td>25 %" in page  # 1 of the 4 jobs that finished in the hour
    assert "?state__exact=failed&amp;error_class=relink&amp;finished=1h" in page
    assert "/admin/accounts/flickraccount/?status__exact=needs_relink" in page
    assert "Sandbox" in page or world.alpha.accounts[0].app.name in page  # the Flickr app's row
    assert "36000000 of 36000000" in page  # the quota left (the tests' quota, nothing reserved)
    # the rest of the admin index is still there
    assert "/admin/jobs/job/" in page


def test_the_links_on_the_front_page_open_the_lists_they_count(operator, world):
    make_job(world, state="failed", error_class="relink")
    make_job(world, state="failed", error_class="caller")
    make_job(world, state="failed", error_class="caller", minutes_ago=180)  # outside the hour
    page = text(operator.get("/admin/jobs/job/?state__exact=failed&error_class=caller&finished=1h"))
    assert "1 job" in page
    only_relink = text(operator.get("/admin/jobs/job/?state__exact=failed&error_class=relink&finished=1h"))
    assert "1 job" in only_relink


def test_jobs_are_found_by_job_id_request_id_and_user_id(operator, world):
    mine = make_job(world, request_id="req-abc-1")
    other = Job.objects.create(
        client=world.beta.model,
        account=world.beta.accounts[0],
        method="flickr.test.echo",
        request_id="req-zzz",
    )
    for term in (str(mine.id), "req-abc-1", str(world.alpha.accounts[0].user_id)):
        page = text(operator.get("/admin/jobs/job/", {"q": term}))
        assert str(mine.id) in page, term
        assert str(other.id) not in page, term


@pytest.mark.parametrize(
    "query",
    [
        {"q": "not-a-uuid ' OR 1=1"},
        {"q": "x" * 500},
        {"state__exact": "bogus"},
        {"error_class": "<script>"},
        {"created": "forever"},
        {"target__exact": "nothing"},
    ],
)
def test_odd_searches_and_filters_never_break_the_list(operator, world, query):
    make_job(world)
    assert operator.get("/admin/jobs/job/", query).status_code == 200


def test_the_list_filters_by_state_queue_method_client_account_and_date(operator, world):
    make_job(world, state="failed", error_class="caller")
    Job.objects.create(client=world.beta.model, account=world.beta.accounts[0], method="flickr.test.echo")
    page = text(operator.get("/admin/jobs/job/"))
    for title in (
        "By state",
        "By queue",
        "By method",
        "By error class",
        "By client",
        "By account",
        "By accepted",
    ):
        assert title in page, title
    upload = make_job(world, target="upload")
    by_queue = text(operator.get("/admin/jobs/job/", {"target__exact": "upload"}))
    assert str(upload.id) in by_queue and "1 job" in by_queue


def test_a_jobs_page_shows_its_attempts_errors_and_timings(operator, world):
    job = make_job(world, state="failed", error_class="retry")
    JobAttempt.objects.create(
        job=job,
        number=1,
        outcome="retrying",
        error={"message": "Flickr answered HTTP 503"},
        duration_ms=812.5,
        worker="host-a:11",
    )
    JobAttempt.objects.create(job=job, number=2, outcome="failed", duration_ms=99.0, worker="host-a:12")
    page = text(operator.get(f"/admin/jobs/job/{job.pk}/change/"))
    assert "Flickr answered HTTP 503" in page
    assert "812.5" in page and "host-a:12" in page
    assert "failed, retry scheduled" in page
    assert 'Waited in queue:</label> <div class="readonly">1000 ms' in page
    assert "went wrong" in page and "harbour" in page


def test_the_dashboard_is_only_for_staff_who_may_see_jobs(client, world):
    staff = User.objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)
    client.force_login(staff)
    page = client.get("/admin/").content.decode()
    assert "Queues and workers" not in page
