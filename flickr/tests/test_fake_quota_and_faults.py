"""Quota, injected faults, counters and the /__sandbox/ control endpoint (FLICKR-API.md §2.5, §4)."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from requests_oauthlib import OAuth1

from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, FakeFlickr, SandboxServer
from flickr.fake.testing import SandboxClient, tiny_png
from flickr.tests.conftest import Clock

TOO_MANY = (
    "<html><body><h1>429 Too Many Requests</h1>"
    "You have sent too many requests in a given amount of time.</body></html>"
)
OTHER_KEY, OTHER_SECRET = "0123456789abcdef0123456789abcdef", "fedcba9876543210"


@pytest.fixture
def app(clock: Clock) -> FakeFlickr:
    app = FakeFlickr(seed=1, clock=clock)
    app.state.add_consumer(OTHER_KEY, OTHER_SECRET, name="Another app")
    return app


@pytest.fixture
def demo(server: SandboxServer, app: FakeFlickr) -> SandboxClient:
    token, secret, _ = app.state.demo_token("write")
    return SandboxClient(server.url, SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, token, secret)


def control(server: SandboxServer, verb: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(verb, f"{server.url}/__sandbox/{path}", timeout=5, **kwargs)


# ---------------------------------------------------------------- quota


def test_going_over_the_hourly_quota_gets_flickrs_429_page(app: FakeFlickr, demo: SandboxClient) -> None:
    app.set_quota(3)

    answers = [demo.rest("flickr.test.null") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].text == TOO_MANY
    assert answers[-1].headers["Content-Type"].startswith("text/html")
    assert "Retry-After" not in answers[-1].headers  # Flickr sends none (§4.1)


def test_the_quota_is_per_consumer_key_and_slides_with_the_hour(
    app: FakeFlickr, server: SandboxServer, clock: Clock
) -> None:
    # Unsigned calls: moving the sandbox clock an hour would make OAuth timestamps stale.
    def echo(key: str) -> int:
        params = {"method": "flickr.test.echo", "api_key": key}
        return requests.get(f"{server.url}/services/rest/", params=params, timeout=5).status_code

    app.set_quota(2)
    echo(SANDBOX_CONSUMER_KEY)
    clock.now += 1800
    echo(SANDBOX_CONSUMER_KEY)

    assert echo(SANDBOX_CONSUMER_KEY) == 429
    assert echo(OTHER_KEY) == 200
    clock.now += 1801
    # The first call has left the window; the second is still in it.
    assert echo(SANDBOX_CONSUMER_KEY) == 200
    assert echo(SANDBOX_CONSUMER_KEY) == 429


def test_the_quota_also_guards_the_oauth_endpoints(app: FakeFlickr, server: SandboxServer) -> None:
    app.set_quota(0)
    auth = OAuth1(SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, callback_uri="oob")

    answer = requests.post(f"{server.url}/services/oauth/request_token", auth=auth, timeout=5)

    assert (answer.status_code, answer.text) == (429, TOO_MANY)


# ---------------------------------------------------------------- faults


def test_latency_slows_matching_calls_only(app: FakeFlickr, demo: SandboxClient) -> None:
    app.faults.add(kind="latency", method="flickr.test.null", ms=150)

    started = time.perf_counter()
    demo.rest("flickr.test.null")
    slow = time.perf_counter() - started
    started = time.perf_counter()
    demo.rest("flickr.test.echo")
    fast = time.perf_counter() - started

    assert slow >= 0.15
    assert fast < 0.15


def test_latency_can_follow_a_distribution(app: FakeFlickr, demo: SandboxClient) -> None:
    app.faults.add(kind="latency", min_ms=20, max_ms=40)
    app.faults.add(kind="latency", mean_ms=10, stddev_ms=2)

    started = time.perf_counter()
    demo.rest("flickr.test.null")

    assert time.perf_counter() - started >= 0.02


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_http_errors_come_as_html_pages(app: FakeFlickr, demo: SandboxClient, status: int) -> None:
    app.faults.add(kind="http_error", status=status, retry_after=7, count=1)

    failed = demo.rest("flickr.test.null")
    recovered = demo.rest("flickr.test.null")

    assert failed.status_code == status
    assert failed.headers["Content-Type"].startswith("text/html")
    assert failed.text.startswith("<html>") and str(status) in failed.text
    assert failed.headers["Retry-After"] == "7"
    assert recovered.status_code == 200


def test_a_rate_limit_fault_is_the_429_page_with_an_optional_retry_after(
    app: FakeFlickr, demo: SandboxClient
) -> None:
    app.faults.add(kind="rate_limit", retry_after=30, count=1)

    answer = demo.rest("flickr.test.null")

    assert (answer.status_code, answer.text, answer.headers["Retry-After"]) == (429, TOO_MANY, "30")


def test_in_band_flickr_errors_follow_the_callers_format(app: FakeFlickr, demo: SandboxClient) -> None:
    app.faults.add(kind="flickr_error", method="flickr.photos.*", code=106)

    write = demo.json("flickr.photos.addTags", photo_id="1", tags="x")
    other = demo.json("flickr.test.login")
    as_xml = demo.rest("flickr.photos.getInfo", photo_id="1")

    assert write == {"stat": "fail", "code": 106, "message": "Write operation failed"}
    assert other["stat"] == "ok"
    assert as_xml.status_code == 200 and '<err code="106" msg="Write operation failed" />' in as_xml.text


def test_service_unavailable_is_the_default_flickr_error(app: FakeFlickr, demo: SandboxClient) -> None:
    app.faults.add(kind="flickr_error")

    assert demo.json("flickr.test.null") == {
        "stat": "fail",
        "code": 105,
        "message": "Service currently unavailable",
    }
    assert "Service currently unavailable" in demo.upload({}, tiny_png()).text


def test_a_dropped_connection_gets_no_answer_at_all(app: FakeFlickr, demo: SandboxClient) -> None:
    app.faults.add(kind="drop_connection", count=1)

    with pytest.raises(requests.ConnectionError):
        demo.rest("flickr.test.null")
    assert demo.rest("flickr.test.null").status_code == 200
    assert app.counters.snapshot()["by_status"] == {0: 1, 200: 1}


def test_key_expired_answers_100_for_the_chosen_key_only(
    app: FakeFlickr, server: SandboxServer, demo: SandboxClient
) -> None:
    app.faults.add(kind="key_expired", consumer_key=SANDBOX_CONSUMER_KEY)

    assert demo.json("flickr.test.null") == {
        "stat": "fail",
        "code": 100,
        "message": "Invalid API Key (Key has expired)",
    }
    assert SandboxClient(server.url, OTHER_KEY, OTHER_SECRET).json("flickr.test.echo")["stat"] == "ok"


def test_a_fault_fires_only_as_often_as_asked(app: FakeFlickr, demo: SandboxClient) -> None:
    app.faults.add(kind="flickr_error", count=2)
    app.faults.add(kind="http_error", probability=0.0)

    codes = [demo.json("flickr.test.null").get("code") for _ in range(3)]

    assert codes == [105, 105, None]
    assert [f["kind"] for f in app.faults.active()] == ["http_error"]


def test_probabilistic_faults_repeat_for_the_same_seed() -> None:
    def firings(seed: int) -> list[int]:
        faults = FakeFlickr(seed=seed).faults
        faults.add(kind="flickr_error", probability=0.5)
        return [len(faults.draw("flickr.test.null", None)) for _ in range(40)]

    assert firings(1) == firings(1)
    assert 5 < sum(firings(1)) < 35


def test_clearing_faults_restores_normal_service(app: FakeFlickr, demo: SandboxClient) -> None:
    app.faults.add(kind="http_error")
    app.faults.clear()

    assert demo.rest("flickr.test.null").status_code == 200


def test_unknown_fault_kinds_and_options_are_refused(app: FakeFlickr) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        app.faults.add(kind="gremlins")
    with pytest.raises(ValueError, match="takes no option"):
        app.faults.add(kind="rate_limit", status=503)


# ---------------------------------------------------------------- counters


def test_counters_count_by_key_token_method_and_status(
    app: FakeFlickr, server: SandboxServer, demo: SandboxClient
) -> None:
    token, _, _ = app.state.demo_token("write")
    demo.rest("flickr.test.login")
    demo.rest("flickr.test.login")
    demo.rest("flickr.photos.getInfo", photo_id="1")
    SandboxClient(server.url, SANDBOX_CONSUMER_KEY, "wrong").rest("flickr.test.echo")

    snapshot = app.counters.snapshot()

    assert snapshot["total"] == 4
    assert snapshot["by_key"] == {SANDBOX_CONSUMER_KEY: 4}
    assert snapshot["by_token"] == {token: 3}
    assert snapshot["by_method"] == {
        "flickr.test.login": 2,
        "flickr.photos.getInfo": 1,
        "flickr.test.echo": 1,
    }
    assert snapshot["by_status"] == {200: 3, 401: 1}
    assert snapshot["by_error"] == {1: 1}


def test_the_call_log_keeps_arguments_but_never_signatures(app: FakeFlickr, demo: SandboxClient) -> None:
    demo.rest("flickr.test.echo", http_method="GET", foo="bar")
    SandboxClient(demo.base_url, SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, signature_type="query").rest(
        "flickr.test.echo", http_method="GET"
    )

    calls = app.counters.calls(limit=10)

    assert [c["method"] for c in calls] == ["flickr.test.echo", "flickr.test.echo"]
    assert calls[0]["args"]["foo"] == "bar"
    assert calls[0]["consumer_key"] == SANDBOX_CONSUMER_KEY
    assert calls[0]["status"] == 200 and calls[0]["token"]
    assert "oauth_nonce" in calls[1]["args"]
    assert all("oauth_signature" not in c["args"] for c in calls)
    assert all(SANDBOX_CONSUMER_SECRET not in str(c) for c in calls)


def test_counters_reset(app: FakeFlickr, demo: SandboxClient) -> None:
    demo.rest("flickr.test.null")
    app.counters.reset()

    assert app.counters.snapshot()["total"] == 0
    assert app.counters.calls() == []


def test_the_sandbox_stays_consistent_under_concurrent_calls(app: FakeFlickr, demo: SandboxClient) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                assert demo.json("flickr.photos.search", user_id="me", per_page="5")["stat"] == "ok"
                assert "<photoid>" in demo.upload({"title": f"t{n}-{i}"}, tiny_png(n + 1, i + 1)).text
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert app.counters.snapshot()["total"] == 60
    assert len({p.title for p in app.state.library.photos.values() if p.title.startswith("t")}) >= 30


# ---------------------------------------------------------------- control endpoint


def test_a_hub_in_another_process_can_get_a_token(server: SandboxServer, app: FakeFlickr) -> None:
    kumiko = app.state.users[2]

    answer = control(server, "POST", "tokens", json={"nsid": kumiko.nsid, "perms": "write"})
    fields = answer.json()
    signed = SandboxClient(
        server.url,
        SANDBOX_CONSUMER_KEY,
        SANDBOX_CONSUMER_SECRET,
        fields["oauth_token"],
        fields["oauth_token_secret"],
    )

    assert answer.status_code == 201
    assert (fields["user_nsid"], fields["username"]) == (kumiko.nsid, kumiko.username)
    assert signed.json("flickr.test.login")["user"]["id"] == kumiko.nsid


def test_control_reads_and_resets_the_counters(server: SandboxServer, demo: SandboxClient) -> None:
    demo.rest("flickr.test.null")

    counters = control(server, "GET", "counters").json()
    calls = control(server, "GET", "calls", params={"limit": "5"}).json()
    control(server, "POST", "reset")

    assert counters["total"] == 1 and counters["by_status"] == {"200": 1}
    assert calls[0]["method"] == "flickr.test.null"
    assert control(server, "GET", "counters").json()["total"] == 0


def test_control_sets_faults_quota_and_expires_keys(server: SandboxServer, demo: SandboxClient) -> None:
    assert control(server, "POST", "faults", json={"kind": "flickr_error", "code": 105}).status_code == 201
    assert demo.json("flickr.test.null")["code"] == 105
    assert control(server, "DELETE", "faults").status_code == 200
    assert control(server, "POST", "faults", json={"kind": "nope"}).status_code == 400

    control(server, "POST", "reset")  # forget the calls so far, quota window included
    control(server, "POST", "quota", json={"per_hour": 1})
    assert demo.rest("flickr.test.null").status_code == 200
    assert demo.rest("flickr.test.null").status_code == 429
    control(server, "POST", "quota", json={"per_hour": None})

    control(server, "POST", f"keys/{SANDBOX_CONSUMER_KEY}/expire")
    assert demo.json("flickr.test.null")["message"] == "Invalid API Key (Key has expired)"


def test_the_control_endpoint_can_be_switched_off() -> None:
    with SandboxServer(FakeFlickr(control=False)) as server:
        assert control(server, "GET", "counters").status_code == 404
        assert requests.get(f"{server.url}/", timeout=5).status_code == 200
