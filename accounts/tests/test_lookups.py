"""The API key's client and the account, kept for a moment per process (accounts/lookups.py):
what it saves, and that a revoked key or a deleted account is still refused."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client as Browser
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiClient, FlickrAccount
from accounts.selectors import account_for_client
from accounts.services import account_mark_needs_relink
from jobs.models import Job

URL = "/api/v1/flickr/rest"


def enqueue(world, user_id=None, client=None):
    client = client or world.alpha
    body = {"method": "flickr.test.echo", "user_id": str(user_id or client.accounts[0].user_id)}
    return client.api().post(URL, data=json.dumps(body), content_type="application/json")


def reads_of(queries, table: str) -> int:
    return sum(
        1 for q in queries if q["sql"].lstrip().upper().startswith("SELECT") and f'"{table}"' in q["sql"]
    )


def delete_elsewhere(account: FlickrAccount) -> None:
    """Deletes the account (and its jobs) as another process would: no signal reaches this one."""
    assert (Job._meta.db_table, FlickrAccount._meta.db_table) == ("jobs_job", "accounts_flickraccount")
    with connection.cursor() as cursor:
        cursor.execute('DELETE FROM "jobs_job" WHERE account_id = %s', [account.pk])
        cursor.execute('DELETE FROM "accounts_flickraccount" WHERE id = %s', [account.pk])


@pytest.fixture
def kept(settings):
    settings.API_LOOKUP_CACHE_SECONDS = 0.5


def test_an_enqueue_soon_after_another_reads_neither_the_key_nor_the_account(world, stub_broker, kept):
    # The key's first use writes its last_used_at and reads it again, so the next one is kept.
    assert enqueue(world).status_code == 202
    assert enqueue(world).status_code == 202
    with CaptureQueriesContext(connection) as third:
        assert enqueue(world).status_code == 202
    assert reads_of(third.captured_queries, ApiClient._meta.db_table) == 0
    assert reads_of(third.captured_queries, FlickrAccount._meta.db_table) == 0
    assert Job.objects.filter(client=world.alpha.model).count() == 3


def test_with_zero_seconds_every_enqueue_reads_both(world, stub_broker, settings):
    settings.API_LOOKUP_CACHE_SECONDS = 0
    assert enqueue(world).status_code == 202
    with CaptureQueriesContext(connection) as second:
        assert enqueue(world).status_code == 202
    assert reads_of(second.captured_queries, ApiClient._meta.db_table) == 1
    assert reads_of(second.captured_queries, FlickrAccount._meta.db_table) == 1


def test_a_key_revoked_in_the_admin_is_refused_at_once(world, stub_broker, kept):
    assert enqueue(world).status_code == 202
    staff = get_user_model().objects.create_superuser("root", "root@example.com", "a long enough password 1")
    browser = Browser()
    browser.force_login(staff)
    browser.post(
        "/admin/accounts/apiclient/", {"action": "revoke", "_selected_action": [world.alpha.model.pk]}
    )
    response = enqueue(world)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ERR_UNAUTHORIZED"


def test_a_key_revoked_by_another_process_is_refused_within_the_setting(world, stub_broker, kept):
    """Another process's change sends this one no signal: the key works until what was kept
    expires, then never again."""
    assert enqueue(world).status_code == 202
    ApiClient.objects.filter(pk=world.alpha.model.pk).update(is_active=False)  # as elsewhere
    time.sleep(0.6)
    assert enqueue(world).status_code == 401
    # The other client's key was never affected.
    assert enqueue(world, client=world.beta).status_code == 202


# In autocommit (not a test's transaction), so the foreign key is checked as in production.
@pytest.mark.django_db(transaction=True)
def test_an_account_deleted_by_another_process_is_404_and_nothing_is_written(world, stub_broker, kept):
    account = world.alpha.accounts[0]
    assert enqueue(world, account.user_id).status_code == 202
    delete_elsewhere(account)
    response = enqueue(world, account.user_id)
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "ERR_TOKEN_NOT_FOUND"
    assert not Job.objects.filter(account_id=account.pk).exists()
    assert enqueue(world, account.user_id).status_code == 404  # read again, not kept
    assert enqueue(world, world.alpha.accounts[1].user_id).status_code == 202


@pytest.mark.django_db(transaction=True)
def test_a_batch_for_an_account_deleted_meanwhile_writes_nothing(world, stub_broker, kept):
    first, second = world.alpha.accounts[:2]
    assert enqueue(world, first.user_id).status_code == 202
    delete_elsewhere(first)
    calls = [{"method": "flickr.test.echo", "user_id": str(a.user_id)} for a in (second, first)]
    response = world.alpha.api().post(
        "/api/v1/flickr/batch", data=json.dumps({"calls": calls}), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"] == ["calls[1].user_id: not one of your linked accounts"]
    assert not Job.objects.filter(client=world.alpha.model).exists()


def test_an_account_marked_for_relinking_is_seen_at_once(world, stub_broker, kept):
    account = world.alpha.accounts[0]
    assert account_for_client(client=world.alpha.model, user_id=str(account.user_id)).status == "active"
    account_mark_needs_relink(account_id=account.pk, reason="token rejected")
    again = account_for_client(client=world.alpha.model, user_id=str(account.user_id))
    assert again.status == "needs_relink"


def test_each_caller_gets_its_own_copy(world, kept):
    user_id = str(world.alpha.accounts[0].user_id)
    first = account_for_client(client=world.alpha.model, user_id=user_id)
    first.username = "changed by one request"
    second = account_for_client(client=world.alpha.model, user_id=user_id)
    assert second is not first
    assert second.username == world.alpha.accounts[0].username
    assert second.app.pk == world.alpha.accounts[0].app_id  # the app came along, no query
