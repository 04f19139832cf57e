"""The small named world every test lives in, and the sandbox Flickr.

Client A (`alpha`) has two linked Flickr accounts, client B (`beta`) one. All tokens are real
sandbox tokens, so a job run in a test signs a real call to the sandbox.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from queue import Queue
from typing import Any

import dramatiq
import pytest
from django.conf import settings as settings_module
from rest_framework.test import APIClient

from accounts.models import ApiClient, FlickrAccount
from accounts.services import account_link, api_client_create, flickr_app_get_or_create


@dataclass
class Sandbox:
    app: Any
    server: Any
    url: str


@dataclass
class Client:
    model: ApiClient
    key: str = field(repr=False)
    accounts: list[FlickrAccount]

    def api(self) -> APIClient:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {self.key}")
        return api


@dataclass
class World:
    alpha: Client
    beta: Client
    sandbox: Sandbox
    tokens: dict[str, tuple[str, str]] = field(repr=False)  # user_id -> (token, secret)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    from flickr.fake import FakeFlickr, SandboxServer

    # A call log long enough for the integration tests that count calls per job (2,000+ jobs).
    app = FakeFlickr(seed=1, control=True, calls_log_size=20_000)
    server = SandboxServer(app, host="127.0.0.1", port=0).start()
    yield Sandbox(app=app, server=server, url=server.url)
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: Sandbox, settings: Any) -> Iterator[Sandbox]:
    """The sandbox, clean, with the hub pointed at it."""
    from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET

    sandbox_server.app.faults.clear()
    sandbox_server.app.counters.reset()
    base = sandbox_server.url
    settings.FLICKR_REST_URL = f"{base}/services/rest/"
    settings.FLICKR_UPLOAD_URL = f"{base}/services/upload/"
    settings.FLICKR_REPLACE_URL = f"{base}/services/replace/"
    settings.FLICKR_OAUTH_REQUEST_TOKEN_URL = f"{base}/services/oauth/request_token"
    settings.FLICKR_OAUTH_AUTHORIZE_URL = f"{base}/services/oauth/authorize"
    settings.FLICKR_OAUTH_ACCESS_TOKEN_URL = f"{base}/services/oauth/access_token"
    settings.FLICKR_API_KEY = SANDBOX_CONSUMER_KEY
    settings.FLICKR_API_SECRET = SANDBOX_CONSUMER_SECRET
    settings.FLICKR_TIMEOUT_SECONDS = 5
    yield sandbox_server
    sandbox_server.app.faults.clear()


def _client_with_accounts(name: str, sandbox: Sandbox, users: list[tuple[str, str]], tokens: dict) -> Client:
    from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET

    model, key = api_client_create(name=name)
    app = flickr_app_get_or_create(
        api_key=SANDBOX_CONSUMER_KEY, api_secret=SANDBOX_CONSUMER_SECRET, server_app=True
    )
    accounts = []
    for nsid, perms in users:
        token, secret = sandbox.app.state.issue_access_token(
            consumer_key=SANDBOX_CONSUMER_KEY, nsid=nsid, perms=perms
        )
        account, _ = account_link(
            client=model,
            app=app,
            nsid=nsid,
            username=f"user-{nsid}",
            fullname="",
            perms=perms,
            token=token,
            token_secret=secret,
        )
        tokens[str(account.user_id)] = (token, secret)
        accounts.append(account)
    return Client(model=model, key=key, accounts=accounts)


def sandbox_nsids(sandbox: Sandbox) -> list[str]:
    users = sandbox.app.state.users
    items = users.values() if isinstance(users, dict) else users
    return [u["nsid"] if isinstance(u, dict) else u.nsid for u in items]


@pytest.fixture
def world(db: Any, sandbox: Sandbox) -> World:
    nsids = sandbox_nsids(sandbox)
    tokens: dict[str, tuple[str, str]] = {}
    alpha = _client_with_accounts("alpha", sandbox, [(nsids[0], "delete"), (nsids[1], "read")], tokens)
    beta = _client_with_accounts("beta", sandbox, [(nsids[2], "write")], tokens)
    return World(alpha=alpha, beta=beta, sandbox=sandbox, tokens=tokens)


@pytest.fixture(autouse=True)
def _no_background_sweeper(settings: Any, monkeypatch: Any) -> Iterator[None]:
    from flickrhub import workers
    from jobs import published_marks

    # Tests call jobs_sweep themselves; a sweeper thread would race them.
    settings.JOB_SWEEP_INTERVAL_SECONDS = 0
    # Likewise the worker heartbeat thread (tests call its functions), and the thread that
    # records enqueued jobs as published (tests call published_marks.flush()).
    settings.WORKER_HEARTBEAT_SECONDS = 0
    # And the quota dispatcher (run_queued_jobs plays it, in the test's transaction).
    monkeypatch.setattr("jobs.dispatcher.DispatcherThread.start", lambda self: None)
    monkeypatch.setattr(published_marks.marks, "background", False)
    # And the thread that writes the attempt log (tests call workers.flush_attempts()).
    monkeypatch.setattr(workers.attempts, "background", False)
    yield
    published_marks.discard()
    workers.attempts.discard()


@pytest.fixture
def stub_broker() -> Iterator[dramatiq.Broker]:
    broker = dramatiq.get_broker()
    _empty_queues(broker)
    yield broker
    _empty_queues(broker)


def _empty_queues(broker: Any) -> None:
    """Gives every queue a fresh, empty `Queue`. `flush_all()` alone is not enough: a message a
    stopped worker had taken but not acked stays counted as unfinished (the stub's consumer
    cannot requeue it), and every later `join` of that queue would wait out its timeout."""
    broker.flush_all()
    for name in list(broker.queues):
        broker.queues[name] = Queue()


@pytest.fixture
def stub_worker(stub_broker: dramatiq.Broker) -> Iterator[dramatiq.Worker]:
    worker = dramatiq.Worker(stub_broker, worker_threads=4, worker_timeout=50)
    worker.start()
    yield worker
    worker.stop()


def run_queued_jobs(broker: dramatiq.Broker, worker: dramatiq.Worker, *, patience: float = 2.0) -> None:
    """Runs every queued message to the end, including retries published while running, and
    plays the quota dispatcher for jobs parked for quota (a worker's dispatcher thread would
    not see the test's transaction) until it has nothing to release for `patience` seconds."""
    from jobs.dispatcher import Dispatcher
    from jobs.models import Job

    queues = ("flickr_rest", "flickr_upload", "flickr_replace", "flickr_callbacks")
    dispatcher = Dispatcher()
    idle_since: float | None = None
    for _ in range(2000):
        for queue in queues:
            if queue in broker.queues:
                broker.join(queue, fail_fast=True, timeout=30_000)
        worker.join()
        if any(q.unfinished_tasks for q in broker.queues.values()):
            continue
        if not Job.objects.parked().exists():
            return
        if dispatcher.dispatch():
            idle_since = None
            continue
        idle_since = idle_since or time.monotonic()
        if time.monotonic() - idle_since > patience:
            return
        time.sleep(settings_module.FLICKR_DISPATCH_INTERVAL_MS / 1000)
    raise AssertionError("jobs kept being re-queued")


@pytest.fixture(autouse=True)
def _quick_retries(settings: Any) -> None:
    settings.JOB_RETRY_MIN_BACKOFF_MS = 5
    settings.JOB_RETRY_MAX_BACKOFF_MS = 20


@pytest.fixture(autouse=True)
def upload_dir(settings: Any, tmp_path: Any) -> Any:
    """Each test stages upload files in its own directory."""
    location = tmp_path / "uploads"
    settings.STORAGES = {
        **settings.STORAGES,
        "uploads": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


@pytest.fixture(autouse=True)
def _fresh_flickr_state(settings: Any) -> Iterator[None]:
    """No cached answer, quota reservation, open circuit or kept lookup carries from one test to the next;
    the quota is out of the way unless a test sets one."""
    from django.core.cache import cache

    from accounts import lookups
    from flickr import breaker, ratelimit
    from jobs import services, usage

    def forget() -> None:
        # On Redis only this run's keys: `clear()` would flush the whole database. A test that
        # pointed the cache at a dead Redis has nothing there to forget.
        with contextlib.suppress(Exception):
            if hasattr(cache, "delete_pattern"):
                cache.delete_pattern("*")
            else:
                cache.clear()
        # Apart: a dead Redis above must not leave one test's quota state to the next.
        with contextlib.suppress(Exception):
            ratelimit.reset()
        breaker._reset_at.clear()
        breaker._closed_seen_at.clear()
        services._slot_free_at.clear()
        usage.discard()
        lookups.forget()  # a rolled-back row sends no signal

    settings.FLICKR_QUOTA_PER_HOUR = 36_000_000
    forget()
    yield
    forget()
