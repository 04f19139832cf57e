"""How the hub's Flickr client classifies what comes back."""

from __future__ import annotations

import json

import pytest

from accounts.models import OAuthCredentials
from flickr import client
from flickr.errors import ErrorClass, FlickrError
from tests.integration.conftest import free_port


@pytest.fixture
def creds(sandbox):
    from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET

    token, secret = sandbox.app.state.issue_access_token(perms="write")
    return OAuthCredentials(SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, token, secret)


def call(creds, method="flickr.test.echo", **params):
    with pytest.raises(FlickrError) as info:
        client.call_rest(creds, method, params)
    return info.value


def test_a_429_is_retried_later_after_its_retry_after(sandbox, creds):
    sandbox.app.faults.add(kind="rate_limit", retry_after=7, count=1)
    error = call(creds)
    assert (error.error_class, error.http_status, error.retry_after) == (ErrorClass.RETRY, 429, 7.0)


def test_a_wrong_consumer_secret_is_a_relink_not_a_retry(sandbox, creds):
    bad = OAuthCredentials(creds.consumer_key, "not-the-secret", creds.token, creds.token_secret)
    error = call(bad)
    assert (error.error_class, error.http_status) == (ErrorClass.RELINK, 401)
    assert "signature_invalid" in error.message


def test_an_expired_key_is_key_disabled(sandbox, creds):
    sandbox.app.faults.add(kind="key_expired", count=1)
    error = call(creds)
    assert (error.error_class, error.flickr_code) == (ErrorClass.KEY_DISABLED, 100)


def test_106_is_retried_for_a_read_and_not_for_a_write(sandbox, creds):
    sandbox.app.faults.add(kind="flickr_error", code=106, count=2)
    assert call(creds, "flickr.photos.search", tags="x").error_class is ErrorClass.RETRY
    assert call(creds, "flickr.photos.addTags", photo_id="1", tags="x").error_class is ErrorClass.CALLER


def test_a_refused_connection_is_safe_to_retry_even_for_a_write(settings, creds):
    settings.FLICKR_REST_URL = f"http://127.0.0.1:{free_port()}/services/rest/"
    error = call(creds, "flickr.photos.addTags", photo_id="1", tags="x")
    assert (error.error_class, error.code) == (ErrorClass.RETRY, "ERR_FLICKR_UNREACHABLE")


def test_a_write_that_sets_a_value_is_retried_after_a_dropped_answer(sandbox, creds):
    # setMeta twice leaves the photo as setMeta once: safe to send again.
    sandbox.app.faults.add(kind="drop_connection", method="flickr.photos.setMeta", count=1)
    error = call(creds, "flickr.photos.setMeta", photo_id="1", title="t")
    assert error.error_class is ErrorClass.RETRY


def test_a_write_that_adds_is_not_retried_after_a_dropped_answer(sandbox, creds):
    sandbox.app.faults.add(kind="drop_connection", method="flickr.photos.addTags", count=1)
    error = call(creds, "flickr.photos.addTags", photo_id="1", tags="x")
    assert error.error_class is ErrorClass.UNKNOWN_OUTCOME


def test_the_committed_catalog_is_what_flickrs_reflection_says(sandbox, settings, tmp_path):
    from django.core.management import call_command

    from flickr.catalog import CATALOG_PATH

    out = tmp_path / "methods.json"
    call_command("refresh_flickr_catalog", output=str(out))
    assert json.loads(out.read_text())["methods"] == json.loads(CATALOG_PATH.read_text())["methods"]
    call_command("refresh_flickr_catalog", check=True)  # no difference: no error


def test_refreshing_the_catalog_says_what_changed(sandbox, tmp_path):
    from django.core.management import CommandError, call_command

    stale = tmp_path / "methods.json"
    stale.write_text(json.dumps({"methods": {"flickr.test.echo": {"perms": "none"}}}))
    with pytest.raises(CommandError, match="differs from Flickr's reflection"):
        call_command("refresh_flickr_catalog", output=str(stale), check=True)


def test_the_environments_proxy_settings_are_honoured_though_read_once(sandbox, creds, monkeypatch):
    # requests reads HTTP(S)_PROXY / NO_PROXY on every call; the client reads them once per
    # endpoint (client._environment), and must still go through the proxy they name.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client._environment.cache_clear()
    try:
        error = call(creds)
        assert (error.error_class, error.code) == (ErrorClass.RETRY, "ERR_FLICKR_UNREACHABLE")
        assert sandbox.app.counters.calls() == [], "the call went to the proxy, not to Flickr"

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        client._environment.cache_clear()
        assert client.call_rest(creds, "flickr.test.echo", {"n": "1"})["stat"] == "ok"
    finally:
        monkeypatch.undo()
        client._environment.cache_clear()
