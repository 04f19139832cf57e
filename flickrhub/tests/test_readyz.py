"""/healthz says the process is alive; /readyz checks each dependency within its own time limit
and answers 503 naming the one that failed."""

from __future__ import annotations

import time

import pytest

from flickrhub import views


def test_healthz_answers_without_touching_any_dependency(client, monkeypatch):
    monkeypatch.setitem(views.READY_CHECKS, "database", lambda: 1 / 0)
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ok_when_every_dependency_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}
    assert "failed" not in body


@pytest.mark.django_db
@pytest.mark.parametrize("failing", ["database", "cache", "broker"])
def test_readyz_names_the_dependency_that_failed(client, monkeypatch, failing):
    def refuse() -> None:
        raise ConnectionRefusedError("nobody home")

    monkeypatch.setitem(views.READY_CHECKS, failing, refuse)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == [failing]
    assert body["checks"][failing] == "unavailable: ConnectionRefusedError"
    assert all(result == "ok" for name, result in body["checks"].items() if name != failing)


@pytest.mark.django_db
def test_a_dependency_that_hangs_fails_within_the_timeout(client, monkeypatch, settings):
    settings.READYZ_TIMEOUT_SECONDS = 0.3
    monkeypatch.setitem(views.READY_CHECKS, "cache", lambda: time.sleep(5))
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 1.5
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == "unavailable: no answer within 0.3s"
    assert response.json()["checks"]["database"] == "ok"


def test_health_keeps_the_original_answer_even_when_dependencies_fail(client, monkeypatch):
    monkeypatch.setitem(views.READY_CHECKS, "database", lambda: 1 / 0)
    assert client.get("/health").json() == {"status": "ok"}
