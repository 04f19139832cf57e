"""A callback URL cannot make the hub call what it should not reach: loopback, private,
link-local and metadata addresses, however they are spelt — IPv6 forms, decimal, octal and hex
numbers, names that resolve inside — are refused when the job is accepted, and again at send
time (a name may change what it resolves to), and a redirect is never followed there.

Every test runs with a guard on outgoing connections: anything but the loopback receiver fails
the test instead of leaving this machine.
"""

from __future__ import annotations

import json
import socket

import pytest
from urllib3.util import connection as urllib3_connection

from conftest import run_queued_jobs
from jobs.callback_http import CallbackRefused, callback_target
from jobs.models import CallbackDelivery, Job
from jobs.tests.callback_receiver import Reply

REFUSED_URLS = [
    # loopback, unspecified, and the names for them
    "http://127.0.0.1/hook",
    "http://127.1/",
    "http://127.255.255.254:8080/",
    "http://0.0.0.0/",
    "http://0/",
    "http://localhost/",
    "http://localhost:8000/admin/",
    "http://LOCALHOST/",
    # private, carrier-grade NAT, benchmarking, reserved, multicast, broadcast
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://198.18.0.1/",
    "http://192.0.0.8/",
    "http://240.0.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    # link-local and the cloud metadata service
    "http://169.254.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "https://169.254.169.254/computeMetadata/v1/",
    # IPv6 loopback, unspecified, unique-local, link-local, and IPv4 dressed as IPv6
    "http://[::1]/",
    "http://[::1]:8000/",
    "http://[::]/",
    "http://[fc00::1]/",
    "http://[fd12:3456:789a::1]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25lo]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:0:7f00:1]/",  # IPv4-translated
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[64:ff9b::7f00:1]/",  # NAT64 to 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 to the metadata address
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 around 169.254.169.254
    # 127.0.0.1 and 169.254.169.254 in decimal, octal, hex and mixed spellings
    "http://2130706433/",
    "http://017700000001/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0177.1/",
    "http://0x7f.1/",
    "http://0x7f.0.0.1/",
    "http://127.000.000.001/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",  # full-width digits
    # names that do not resolve are refused too (nothing to check them against)
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://127.0.0.1./",
    # not http(s), credentials to confuse parsers, no host
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "file:///etc/passwd",
    "ftp://example.com/x",
    "dict://127.0.0.1:11211/stats",
    "http:///hook",
    "http://example.com@127.0.0.1/",
    "http://127.0.0.1:80\\@example.com/",
    "http://user:pass@example.com/",
]


@pytest.fixture(autouse=True)
def connections(monkeypatch):
    """Every connection the callback sender opens, by (host, port); only loopback may open."""
    opened: list[tuple[str, int]] = []
    real = urllib3_connection.create_connection

    def guarded(address, *args, **kwargs):
        opened.append(address)
        if address[0] not in ("127.0.0.1", "::1"):
            raise AssertionError(f"a callback tried to connect to {address}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3_connection, "create_connection", guarded)
    return opened


@pytest.fixture
def resolver(monkeypatch):
    """Names under .example.test resolve to whatever the test says; others as usual."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".example.test"):
            if host not in answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            infos = []
            for address in answers[host]:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                sockaddr = (address, port or 80, 0, 0) if family == socket.AF_INET6 else (address, port or 80)
                infos.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
            return infos
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def enqueue(world, callback_url: str):
    return world.alpha.api().post(
        "/api/v1/flickr/rest",
        data=json.dumps(
            {
                "method": "flickr.test.echo",
                "user_id": str(world.alpha.accounts[0].user_id),
                "callback_url": callback_url,
            }
        ),
        content_type="application/json",
    )


def assert_refused_at_the_door(response) -> str:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"]["code"] == "ERR_INVALID_REQUEST"
    [problem] = body["error"]["details"]
    assert problem.startswith("callback_url")
    return problem


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_a_callback_url_that_reaches_inside_is_refused_when_the_job_is_sent(world, url, connections):
    assert_refused_at_the_door(enqueue(world, url))
    assert not Job.objects.exists()
    assert connections == []


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_the_same_urls_are_refused_again_at_send_time(url, connections):
    # A delivery re-checks its URL before every try (a job may predate a rule, or a name
    # may have changed what it resolves to).
    with pytest.raises(CallbackRefused):
        callback_target(url)
    assert connections == []


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.20.30.40"],
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["fd00::1"],
        ["::ffff:192.168.0.1"],
        # one good address does not excuse a bad one: the connection could take either
        ["93.184.216.34", "10.0.0.5"],
        ["2606:2800:220:1:248:1893:25c8:1946", "::1"],
    ],
)
def test_a_name_that_resolves_to_an_inside_address_is_refused(world, resolver, addresses):
    resolver["hooks.example.test"] = addresses
    problem = assert_refused_at_the_door(enqueue(world, "https://hooks.example.test/hook"))
    assert "non-public" in problem


def test_a_name_that_resolves_outside_is_accepted(world, resolver, stub_broker):
    resolver["hooks.example.test"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    assert enqueue(world, "https://hooks.example.test/hook").status_code == 202


def test_the_allow_list_names_hosts_not_whatever_resolves_like_them(world, settings):
    settings.CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    for url in ("http://localhost/hook", "http://2130706433/hook", "http://[::1]/hook"):
        assert_refused_at_the_door(enqueue(world, url))


@pytest.mark.usefixtures("transactional_db")
def test_a_name_that_turns_inside_after_the_job_was_accepted_is_refused_without_a_request(
    world, stub_broker, stub_worker, resolver, connections
):
    resolver["hooks.example.test"] = ["93.184.216.34"]
    response = enqueue(world, "https://hooks.example.test/hook")
    assert response.status_code == 202
    resolver["hooks.example.test"] = ["127.0.0.1"]  # DNS rebinding
    run_queued_jobs(stub_broker, stub_worker)

    delivery = CallbackDelivery.objects.get(job_id=response.json()["data"]["job_id"])
    assert delivery.state == "failed" and delivery.attempts == 1  # refused for good
    assert "non-public" in delivery.history.get().error
    # the only connection made was the job's own call to the sandbox Flickr
    assert {port for _address, port in connections} == {world.sandbox.server.port}


@pytest.mark.usefixtures("transactional_db")
@pytest.mark.parametrize(
    "status, location",
    [
        (302, "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
        (307, "http://127.0.0.1:6379/"),
        (308, "http://[::1]/admin/"),
        (303, "http://10.0.0.1/"),
    ],
)
def test_a_redirect_to_an_inside_address_is_not_followed(
    world, stub_broker, stub_worker, receiver, connections, settings, status, location
):
    settings.CALLBACK_RETRY_ATTEMPTS = 1
    receiver.script = [Reply(status, headers={"Location": location})]
    response = enqueue(world, receiver.url)
    assert response.status_code == 202
    run_queued_jobs(stub_broker, stub_worker)

    assert [r.path for r in receiver.wait_for(1)] == ["/hook"]
    # the sandbox Flickr for the job, the receiver once, nothing else
    assert sorted(set(connections)) == sorted(
        {("127.0.0.1", world.sandbox.server.port), ("127.0.0.1", receiver.port)}
    )
    delivery = CallbackDelivery.objects.get(job_id=response.json()["data"]["job_id"])
    assert delivery.state == "failed"
    assert "not followed" in delivery.history.get().error
