"""Retention: ended jobs are deleted after JOB_TTL_COMPLETE_DAYS / JOB_TTL_FAIL_DAYS, with
their deliveries and staged files, and their status answers 410 from then on."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from jobs.middleware import Sweeper
from jobs.models import CallbackAttempt, CallbackDelivery, Job, JobState, PurgedJob
from jobs.retention import jobs_purge
from jobs.services import job_enqueue
from jobs.uploads import upload_storage


@pytest.fixture(autouse=True)
def _retention(settings):
    settings.JOB_TTL_COMPLETE_DAYS = 30
    settings.JOB_TTL_FAIL_DAYS = 90
    settings.JOB_TOMBSTONE_DAYS = 365


def ended_job(world, state: str, days_ago: float, *, client=None, **fields) -> Job:
    client = client or world.alpha
    job = job_enqueue(client=client.model, account=client.accounts[0], method="flickr.test.echo", params={})
    ended = timezone.now() - timedelta(days=days_ago)
    Job.objects.filter(pk=job.pk).update(state=state, finished_at=ended, updated_at=ended, **fields)
    return Job.objects.get(pk=job.pk)


def with_delivery(job: Job, state: str = "delivered") -> CallbackDelivery:
    delivery = CallbackDelivery.objects.create(
        job=job,
        job_finished_at=job.finished_at,
        url="http://127.0.0.1:9/hook",
        body="{}",
        max_attempts=3,
        state=state,
    )
    CallbackAttempt.objects.create(delivery=delivery, number=1, started_at=timezone.now(), status_code=200)
    return delivery


def test_only_jobs_past_their_retention_are_deleted(world, stub_broker):
    old_done = ended_job(world, JobState.COMPLETED, 31)
    new_done = ended_job(world, JobState.COMPLETED, 29)
    old_fail = ended_job(world, JobState.FAILED, 91)
    mid_fail = ended_job(world, JobState.FAILED, 45)  # older than 30, younger than 90
    stuck = ended_job(world, JobState.QUEUED, 400)  # not ended: never purged
    retrying = ended_job(world, JobState.RETRYING, 400)

    report = jobs_purge()

    assert (report.completed, report.failed) == (1, 1)
    left = set(Job.objects.values_list("pk", flat=True))
    assert left == {new_done.pk, mid_fail.pk, stuck.pk, retrying.pk}
    assert set(PurgedJob.objects.values_list("pk", flat=True)) == {old_done.pk, old_fail.pk}


def test_a_purged_job_takes_its_deliveries_and_attempts_with_it(world, stub_broker):
    old = with_delivery(ended_job(world, JobState.COMPLETED, 31)).job
    kept = with_delivery(ended_job(world, JobState.COMPLETED, 1)).job
    jobs_purge()
    assert list(CallbackDelivery.objects.values_list("job_id", flat=True)) == [kept.pk]
    assert CallbackAttempt.objects.filter(delivery__job=old.pk).count() == 0
    assert CallbackAttempt.objects.count() == 1


def test_a_job_whose_callback_is_still_being_tried_waits_for_a_later_purge(world, stub_broker):
    job = with_delivery(ended_job(world, JobState.COMPLETED, 31), state="pending").job
    assert jobs_purge().completed == 0
    assert Job.objects.filter(pk=job.pk).exists()


def test_a_purged_jobs_staged_file_is_removed(world, stub_broker):
    name = upload_storage().save("leftover.upload", ContentFile(b"x" * 10))
    job = ended_job(world, JobState.FAILED, 91, upload_name=name, target="upload")
    report = jobs_purge()
    assert report.files == 1
    assert not upload_storage().exists(name)
    assert not Job.objects.filter(pk=job.pk).exists()


def test_the_status_of_a_purged_job_answers_410_and_another_clients_404(world, stub_broker):
    job = ended_job(world, JobState.COMPLETED, 31)
    user_id = str(world.alpha.accounts[0].user_id)
    jobs_purge()

    response = world.alpha.api().get(f"/api/v1/flickr/jobs/{job.pk}")
    assert response.status_code == 410
    body = response.json()
    assert body["error"]["code"] == "ERR_JOB_EXPIRED" and body["data"] is None

    status = world.alpha.api().post(
        "/api/v1/flickr/jobs/status",
        data=json.dumps({"job_id": str(job.pk), "user_id": user_id}),
        content_type="application/json",
    )
    assert status.status_code == 410
    assert status.json()["error"]["code"] == "ERR_JOB_EXPIRED"

    # another client, or a user_id that was not the job's, learns nothing
    theirs = world.beta.api().get(f"/api/v1/flickr/jobs/{job.pk}")
    assert (theirs.status_code, theirs.json()["error"]["code"]) == (404, "ERR_JOB_NOT_FOUND")
    wrong_user = world.alpha.api().post(
        "/api/v1/flickr/jobs/status",
        data=json.dumps({"job_id": str(job.pk), "user_id": str(world.alpha.accounts[1].user_id)}),
        content_type="application/json",
    )
    assert (wrong_user.status_code, wrong_user.json()["error"]["code"]) == (404, "ERR_JOB_NOT_FOUND")


def test_markers_older_than_their_days_go_and_the_status_becomes_404(world, stub_broker):
    job = ended_job(world, JobState.COMPLETED, 31)
    jobs_purge()
    PurgedJob.objects.filter(pk=job.pk).update(purged_at=timezone.now() - timedelta(days=366))
    assert jobs_purge().markers == 1
    assert world.alpha.api().get(f"/api/v1/flickr/jobs/{job.pk}").status_code == 404


def test_zero_days_keeps_jobs_forever(world, stub_broker, settings):
    settings.JOB_TTL_COMPLETE_DAYS = 0
    ended_job(world, JobState.COMPLETED, 3650)
    old_fail = ended_job(world, JobState.FAILED, 3650)
    report = jobs_purge()
    assert (report.completed, report.failed) == (0, 1)
    assert Job.objects.count() == 1 and not Job.objects.filter(pk=old_fail.pk).exists()


def test_deletion_goes_in_batches_until_everything_expired_is_gone(world, stub_broker):
    for _ in range(7):
        ended_job(world, JobState.COMPLETED, 40)
    ended_job(world, JobState.COMPLETED, 1)
    assert jobs_purge(batch_size=2).completed == 7
    assert Job.objects.count() == 1
    # a run bounded in batches (the sweeper's) does part of the work and leaves the rest
    for _ in range(5):
        ended_job(world, JobState.COMPLETED, 40)
    assert jobs_purge(batch_size=2, max_batches=1).completed == 2
    assert Job.objects.count() == 4


def test_the_command_deletes_and_says_what_it_did(world, stub_broker, capsys):
    ended_job(world, JobState.COMPLETED, 31)
    ended_job(world, JobState.FAILED, 91)
    call_command("purge_jobs")
    out = capsys.readouterr().out
    assert "Deleted 1 completed job(s) that ended more than 30 day(s) ago." in out
    assert "Deleted 1 failed job(s) that ended more than 90 day(s) ago." in out
    assert Job.objects.count() == 0


def test_a_dry_run_counts_and_deletes_nothing(world, stub_broker, capsys):
    ended_job(world, JobState.COMPLETED, 31)
    ended_job(world, JobState.COMPLETED, 1)
    call_command("purge_jobs", "--dry-run")
    assert "Would delete 1 completed job(s)" in capsys.readouterr().out
    assert Job.objects.count() == 2 and not PurgedJob.objects.exists()


def test_the_command_can_override_the_days(world, stub_broker, capsys):
    ended_job(world, JobState.COMPLETED, 10)
    call_command("purge_jobs", "--complete-days", "7", "--fail-days", "0")
    out = capsys.readouterr().out
    assert "Deleted 1 completed job(s) that ended more than 7 day(s) ago." in out
    assert "Kept every failed job" in out
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["--complete-days", "-1"], "days must be 0"),
        (["--fail-days", "soon"], "'soon' is not a whole number of days"),
        (["--batch-size", "0"], "must be between 1 and 10000"),
        (["--batch-size", "lots"], "'lots' is not a whole number"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_are_a_clear_error_and_nothing_is_deleted(world, stub_broker, args, complaint):
    ended_job(world, JobState.COMPLETED, 31)
    with pytest.raises(CommandError, match=complaint):
        call_command("purge_jobs", *args)
    assert Job.objects.count() == 1 and not PurgedJob.objects.exists()


def test_bad_keyword_options_are_refused_too(world, stub_broker):
    ended_job(world, JobState.COMPLETED, 31)
    with pytest.raises(CommandError, match="--complete-days must be 0"):
        call_command("purge_jobs", complete_days=-5)
    with pytest.raises(CommandError, match="--batch-size must be between"):
        call_command("purge_jobs", batch_size=0)
    assert Job.objects.count() == 1


@pytest.mark.usefixtures("transactional_db")
def test_the_workers_sweeper_purges_on_its_own(world, stub_broker):
    job = ended_job(world, JobState.COMPLETED, 31)
    sweeper = Sweeper(interval=0.05)
    sweeper.start()
    try:
        deadline = time.monotonic() + 10
        while Job.objects.filter(pk=job.pk).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sweeper.stop()
        sweeper.join(timeout=5)
    assert not Job.objects.filter(pk=job.pk).exists()
    assert PurgedJob.objects.filter(pk=job.pk).exists()


def test_a_negative_retention_setting_stops_the_hub_with_a_clear_message(tmp_path):
    from flickrhub.tests.test_settings import run_check

    result = run_check(tmp_path, JOB_TTL_FAIL_DAYS="-3")
    assert result.returncode != 0
    assert "JOB_TTL_FAIL_DAYS must be 0 (keep forever) or a number of days" in result.stderr
