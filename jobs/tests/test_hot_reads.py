"""The hand-written reads on the hot path (flickrhub/sqlrows.py) give what the ORM would.

They run here on SQLite and again on PostgreSQL in the integration run
(tests/integration/test_hot_reads_postgres.py), where the claim is one statement of its own.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from accounts.selectors import account_for_client
from flickrhub import sqlrows
from flickrhub.models import AttemptOutcome, JobAttempt
from jobs.models import Job, JobState, job_with_relations


def queued(world, **fields) -> Job:
    account = world.alpha.accounts[0]
    return Job.objects.create(
        client=world.alpha.model,
        account=account,
        method="flickr.photos.search",
        params={"text": "fjord", "per_page": 5, "nested": {"a": [1, 2]}},
        meta={"ticket": 7},
        **fields,
    )


def test_a_claimed_job_comes_with_its_account_app_and_client_and_no_further_reads(
    world, django_assert_num_queries
):
    job = queued(world)
    before = timezone.now()
    claimed = Job.objects.claim(job.id, lease_seconds=60, takeover=False)
    assert claimed is not None
    with django_assert_num_queries(0):
        assert claimed.pk == job.pk and isinstance(claimed.pk, uuid.UUID)
        assert (claimed.state, claimed.attempts, claimed.taken_over) == (JobState.RUNNING, 1, False)
        assert claimed.params == {"text": "fjord", "per_page": 5, "nested": {"a": [1, 2]}}
        assert claimed.meta == {"ticket": 7}
        assert claimed.started_at is not None and claimed.started_at >= before - timedelta(seconds=1)
        assert claimed.started_at.tzinfo is not None
        assert claimed.lease_until - claimed.started_at == timedelta(seconds=60)
        assert isinstance(claimed.run_token, uuid.UUID)
        assert claimed.account.user_id == world.alpha.accounts[0].user_id
        assert claimed.account.app.api_key == world.alpha.accounts[0].app.api_key
        assert claimed.client.name == world.alpha.model.name
    stored = Job.objects.get(pk=job.pk)
    assert (stored.state, stored.attempts, stored.run_token) == (JobState.RUNNING, 1, claimed.run_token)
    assert stored.started_at == claimed.started_at
    # The run completes through the token the claim returned.
    assert Job.objects.complete(claimed, result={"flickr": {"stat": "ok"}})


def test_only_queued_and_retrying_jobs_are_claimed_and_an_unknown_id_is_none(world):
    retrying = queued(world, state=JobState.RETRYING, attempts=1)
    claimed = Job.objects.claim(retrying.id, lease_seconds=60, takeover=False)
    assert claimed is not None and claimed.attempts == 2
    for state in (JobState.COMPLETED, JobState.FAILED):
        assert Job.objects.claim(queued(world, state=state).id, lease_seconds=60, takeover=True) is None
    assert Job.objects.claim(uuid.uuid4(), lease_seconds=60, takeover=False) is None


def test_a_running_job_is_taken_over_only_when_redelivered_or_its_lease_ran_out(world):
    job = queued(world)
    first = Job.objects.claim(job.id, lease_seconds=60, takeover=False)
    assert Job.objects.claim(job.id, lease_seconds=60, takeover=False) is None
    again = Job.objects.claim(job.id, lease_seconds=60, takeover=True)
    assert again is not None and again.taken_over and again.account.app.pk == first.account.app.pk
    assert again.run_token != first.run_token


def test_a_job_read_with_its_relations(world, django_assert_num_queries):
    job = queued(world)
    with django_assert_num_queries(1):
        read = job_with_relations(str(job.id))
        assert read.account.app.pk and read.client.pk == world.alpha.model.pk
    assert read.params == job.params and read.state == JobState.QUEUED
    assert job_with_relations(uuid.uuid4()) is None


def test_an_account_is_found_only_for_its_own_client_with_its_app(world, django_assert_num_queries):
    mine = world.alpha.accounts[0]
    with django_assert_num_queries(1):
        found = account_for_client(client=world.alpha.model, user_id=str(mine.user_id))
        assert found.pk == mine.pk and found.app.api_key == mine.app.api_key
        assert found.client is world.alpha.model
    assert found.status == mine.status and found.created_at == mine.created_at
    assert account_for_client(client=world.beta.model, user_id=str(mine.user_id)) is None
    assert account_for_client(client=world.alpha.model, user_id=str(uuid.uuid4())) is None
    assert account_for_client(client=world.alpha.model, user_id="not-a-uuid") is None


def test_a_hand_written_insert_stores_the_row_the_orm_would(world):
    fields = {
        "client": world.alpha.model,
        "account": world.alpha.accounts[0],
        "method": "flickr.photos.search",
        "params": {"text": "fjord", "tags": ["a", "b"]},
        "meta": None,
        "priority": "high",
        "cache_max_age": 0,
    }
    by_orm = Job.objects.create(**fields)
    by_hand = Job(**fields)
    sqlrows.insert(by_hand)
    assert not by_hand._state.adding
    orm_row = Job.objects.filter(pk=by_orm.pk).values().get()
    hand_row = Job.objects.filter(pk=by_hand.pk).values().get()
    for name in ("id", "created_at", "updated_at"):
        orm_row.pop(name), hand_row.pop(name)
    assert hand_row == orm_row
    attempt = JobAttempt(job_id=by_hand.pk, number=1, outcome=AttemptOutcome.COMPLETED, worker="w:1")
    sqlrows.insert(attempt)  # an auto-increment id, left to the database
    assert JobAttempt.objects.get(job_id=by_hand.pk).outcome == AttemptOutcome.COMPLETED


def test_a_hand_written_update_leaves_expressions_and_relations_to_the_orm(world):
    job = queued(world)
    assert sqlrows.update(Job, {"attempts": F("attempts") + 1}, where={"pk": job.pk}) is None
    assert sqlrows.update(Job, {"client": world.beta.model}, where={"pk": job.pk}) is None
    assert Job.objects.get(pk=job.pk).attempts == 0, "nothing was run"
    changed = sqlrows.update(Job, {"result": {"x": [1]}, "state": JobState.FAILED}, where={"pk": job.pk})
    assert changed == 1
    assert sqlrows.update(Job, {"state": JobState.FAILED}, where={"pk": job.pk, "state": "queued"}) == 0
    stored = Job.objects.get(pk=job.pk)
    assert (stored.result, stored.state) == ({"x": [1]}, JobState.FAILED)


def test_a_hand_written_update_returns_a_field_as_the_rows_hold_it_after(world):
    job = queued(world)
    Job.objects.filter(pk=job.pk).update(awaited=True)
    back = sqlrows.update_returning(
        Job, {"state": JobState.FAILED}, where={"pk": job.pk}, returning="awaited"
    )
    assert back == [True]  # a bool, not SQLite's 1
    assert (
        sqlrows.update_returning(
            Job, {"state": "queued"}, where={"pk": job.pk, "state": "queued"}, returning="awaited"
        )
        == []
    )
    assert (
        sqlrows.update_returning(Job, {"attempts": F("attempts") + 1}, where={"pk": job.pk}, returning="id")
        is None
    )
    changed_at = sqlrows.update_returning(Job, {"attempts": 3}, where={"pk": job.pk}, returning="updated_at")
    assert changed_at == [Job.objects.get(pk=job.pk).updated_at]  # an aware datetime, as the ORM's
