"""An enqueue that does not wait for its job answers before its message's publish (and the
broker's confirm), while the broker is known to take messages — and loses nothing when it
does not. The in-memory broker stands in for RabbitMQ here, with its publish held or failing on
purpose; tests/integration/test_faults_rabbitmq.py stops the real one."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator

import dramatiq
import pytest

from jobs import background_publish, published_marks
from jobs.models import Job
from tests.stack import wait_until

pytestmark = pytest.mark.usefixtures("transactional_db")

URL = "/api/v1/flickr/rest"


def post(client, query: str = "", **params):
    data = {"method": "flickr.test.echo", "params": params, "user_id": str(client.accounts[0].user_id)}
    return client.api().post(URL + query, data=json.dumps(data), content_type="application/json")


@pytest.fixture(autouse=True)
def as_with_rabbitmq(settings, monkeypatch) -> Iterator[None]:
    """Publishing as with RabbitMQ (the in-memory broker is otherwise always published to on
    the request path), each test starting as a fresh process does: health unknown."""
    settings.EMBEDDED_BROKER = False
    settings.API_PUBLISH_IN_BACKGROUND = True
    monkeypatch.setattr(background_publish, "RETRY_SECONDS", 0.05)
    monkeypatch.setattr(background_publish, "_healthy", False)
    yield
    wait_until(lambda: background_publish.pending() == 0, "the publisher thread to finish")


class Broker:
    """The rest queue's publish, held at a gate or failing, as a test says."""

    def __init__(self, monkeypatch) -> None:
        from jobs import tasks

        self.real = tasks.flickr_rest.send_with_options
        self.gate = threading.Event()
        self.gate.set()
        self.down = False
        self.callers: list[str] = []
        monkeypatch.setattr("jobs.tasks.flickr_rest.send_with_options", self.send)

    def send(self, *args, **kwargs):
        self.callers.append(threading.current_thread().name)
        assert self.gate.wait(10), "the test never opened the gate"
        if self.down:
            raise dramatiq.errors.ConnectionClosed(OSError("broker down"))
        return self.real(*args, **kwargs)


def job_ids_sent(stub_broker) -> set[str]:
    queue = stub_broker.queues["flickr_rest"]
    return {dramatiq.Message.decode(m).args[0] for m in list(queue.queue)}


def test_the_answer_comes_before_the_publish_once_a_publish_succeeded(world, stub_broker, monkeypatch):
    broker = Broker(monkeypatch)
    first = post(world.alpha, n="1")
    assert first.status_code == 202
    assert broker.callers[-1] == "MainThread", "a process's first enqueue publishes before answering"

    broker.gate.clear()  # the broker is slow to confirm
    second = post(world.alpha, n="2")
    assert second.status_code == 202, "answered while its publish is still waiting"
    second_id = second.json()["data"]["job_id"]
    assert Job.objects.filter(pk=second_id, state="queued").exists(), "the row is committed first"
    assert second_id not in job_ids_sent(stub_broker)

    broker.gate.set()
    wait_until(lambda: second_id in job_ids_sent(stub_broker), "the second job's message")
    assert broker.callers[-1] == "job-publisher"
    wait_until(lambda: background_publish.pending() == 0, "the publisher thread")
    published_marks.flush()
    assert Job.objects.filter(published_at__isnull=False).count() == 2, "both marked after their confirm"


def test_a_wait_publishes_before_answering(world, stub_broker, stub_worker, monkeypatch):
    broker = Broker(monkeypatch)
    assert post(world.alpha, n="1").status_code == 202  # the broker is known to take messages
    waited = post(world.alpha, query="?wait=5", n="2")
    assert waited.status_code == 200, waited.content
    assert broker.callers == ["MainThread", "MainThread"]


def test_a_job_accepted_as_the_broker_goes_away_is_published_once_it_is_back(world, stub_broker, monkeypatch):
    broker = Broker(monkeypatch)
    assert post(world.alpha, n="1").status_code == 202
    broker.down = True
    accepted = post(world.alpha, n="2")
    assert accepted.status_code == 202, "the process did not know yet: the row is committed, the job is kept"
    kept_id = accepted.json()["data"]["job_id"]
    wait_until(lambda: not background_publish._healthy, "the publisher thread to fail")

    refused = post(world.alpha, n="3")
    assert refused.status_code == 503, "after a failed publish, each enqueue publishes itself"
    assert refused.json()["error"]["code"] == "ERR_QUEUE_UNAVAILABLE"
    assert Job.objects.count() == 2, "the refused job left no row"
    assert kept_id not in job_ids_sent(stub_broker)

    broker.down = False
    wait_until(lambda: kept_id in job_ids_sent(stub_broker), "the kept job's message, without the sweeper")
    again = post(world.alpha, n="4")
    assert again.status_code == 202
    wait_until(lambda: len(job_ids_sent(stub_broker)) == 3, "the fourth job's message")
    assert job_ids_sent(stub_broker) == {str(pk) for pk in Job.objects.values_list("pk", flat=True)}


def test_with_the_setting_off_every_enqueue_waits_for_its_publish(world, stub_broker, monkeypatch, settings):
    settings.API_PUBLISH_IN_BACKGROUND = False
    broker = Broker(monkeypatch)
    assert post(world.alpha, n="1").status_code == 202
    broker.down = True
    refused = post(world.alpha, n="2")
    assert refused.status_code == 503
    assert Job.objects.count() == 1
    assert broker.callers == ["MainThread", "MainThread"]


def test_a_clean_exit_publishes_what_the_thread_still_holds(world, stub_broker, monkeypatch):
    monkeypatch.setattr(background_publish, "_ensure_thread", lambda: None)  # a thread that never ran
    # and the one an earlier test started, still waiting on the old queue, sees none of these
    monkeypatch.setattr(background_publish, "_jobs", queue.SimpleQueue())
    assert post(world.alpha, n="1").status_code == 202
    held = post(world.alpha, n="2").json()["data"]["job_id"]
    assert background_publish.pending() == 1
    assert held not in job_ids_sent(stub_broker)

    background_publish._publish_at_exit()
    assert held in job_ids_sent(stub_broker)
    assert background_publish.pending() == 0
    assert Job.objects.get(pk=held).published_at is not None, "and its mark written"
