"""The PostgreSQL backend's health check (flickrhub/pgbackend): a quiet persistent connection is
trusted without a `SELECT 1` round trip, and one the server ended is found out and replaced."""

from __future__ import annotations

import select
import time
from typing import Any

import psycopg
import pytest
from django.db import connection

pytestmark = pytest.mark.usefixtures("transactional_db")  # autocommit: the state requests run in


def _server() -> psycopg.Connection[Any]:
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"] or "postgres",
        dbname="postgres",
        autocommit=True,
    )


def _activity(server: psycopg.Connection[Any], pid: int) -> tuple[Any, ...] | None:
    return server.execute("SELECT state_change, query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()


def test_the_hub_runs_on_its_own_postgresql_backend() -> None:
    assert connection.settings_dict["ENGINE"] == "flickrhub.pgbackend"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_quiet_connection_passes_the_health_check_without_a_query() -> None:
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with _server() as server:
        before = _activity(server, pid)
        assert connection.is_usable()
        time.sleep(0.05)
        # The server saw no statement: the backend's last state change is the one before.
        assert _activity(server, pid) == before


def test_a_connection_the_server_ended_fails_the_check_and_the_next_query_reconnects() -> None:
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with _server() as server:
        server.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The server's FATAL notice and the socket's end arrive a moment later.
    poller = select.poll()
    poller.register(connection.connection.fileno(), select.POLLIN)
    assert poller.poll(5000), "the terminated connection never became readable"

    assert not connection.is_usable()
    connection.health_check_done = False  # as at the start of a request or a job message
    connection.close_if_health_check_failed()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
