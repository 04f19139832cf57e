"""Where a callback may go, and the one HTTP request that takes it there.

A callback makes the hub send a request to an address the caller chose, so the address is
checked: http(s) only, and never a loopback, private, link-local or metadata address (the
check resolves the name, so `127.1`, `2130706433` and a DNS name pointing inside are caught
too), unless CALLBACK_ALLOWED_HOSTS names the host (development and tests).

The check runs when the job is accepted and again when each try is sent. Checking a name and
then letting the HTTP library resolve it again would leave a gap a DNS-rebinding name walks
through (public at the check, 127.0.0.1 at the connect), so the request connects only to the
addresses the check approved: `post` pins them for the connection it makes. Proxies from the
environment are ignored for the same reason, and redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

USER_AGENT = "FlickrHub-Callbacks/1.0"
# How much of a receiver's answer is kept with the attempt.
EXCERPT_BYTES = 500


class CallbackRefused(Exception):
    """The URL may not be called. `transient` when a later try may succeed (the name did not
    resolve just now); otherwise trying again is pointless."""

    def __init__(self, problem: str, *, transient: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.transient = transient


@dataclass(frozen=True)
class CallbackTarget:
    host: str
    port: int
    addresses: tuple[str, ...]


def _host_and_port(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise CallbackRefused("callback_url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise CallbackRefused("callback_url must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise CallbackRefused("callback_url must not carry credentials")
    return host, port or (443 if parts.scheme == "https" else 80)


# IPv6 forms that carry an IPv4 address a connection may end up at: IPv4-translated
# (::ffff:0:a.b.c.d), IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks)
# and NAT64's well-known prefix (64:ff9b::a.b.c.d, which a NAT64 gateway forwards to that
# address). IPv4-mapped (::ffff:a.b.c.d) and 6to4 (2002::/16) have properties of their own.
_V4_EMBEDDING_V6 = tuple(ipaddress.ip_network(n) for n in ("::ffff:0:0:0/96", "::/96", "64:ff9b::/96"))
# Not globally reachable, though some Python versions call part of it global.
_NOT_PUBLIC_V4 = (ipaddress.ip_network("192.0.0.0/24"),)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in _V4_EMBEDDING_V6):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _is_public(address: str) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 address that stands for an IPv4 one is as public as that address.
        ip = _embedded_ipv4(ip) or ip
    if isinstance(ip, ipaddress.IPv4Address) and any(ip in network for network in _NOT_PUBLIC_V4):
        return False
    return ip.is_global and not ip.is_multicast


def callback_target(url: str) -> CallbackTarget:
    """The URL's host and the addresses a request to it may connect to; CallbackRefused when
    it may not be called at all."""
    host, port = _host_and_port(url)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise CallbackRefused(f"callback_url host {host!r} does not resolve", transient=True) from None
    addresses = tuple(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))
    if host not in settings.CALLBACK_ALLOWED_HOSTS and not all(_is_public(a) for a in addresses):
        raise CallbackRefused(
            f"callback_url host {host!r} resolves to a non-public address; callbacks go "
            "only to public addresses"
        )
    return CallbackTarget(host=host, port=port, addresses=addresses)


def callback_url_problem(url: str) -> str | None:
    """Why a callback URL is refused when a job is accepted, or None when it is acceptable."""
    try:
        host, _port = _host_and_port(url)
        if host in settings.CALLBACK_ALLOWED_HOSTS:
            return None
        callback_target(url)
    except CallbackRefused as refused:
        return refused.problem
    return None


# --- The pinned connection ------------------------------------------------------------------

_PINNED: ContextVar[CallbackTarget | None] = ContextVar("callback_target", default=None)


def _pinned_socket(conn: HTTPConnection) -> socket.socket:
    target = _PINNED.get()
    if target is None:  # fail closed: only `post` opens these connections
        raise NewConnectionError(conn, "callback connections go only to an address checked for them")
    error: OSError | None = None
    for address in target.addresses:
        try:
            return urllib3_connection.create_connection(
                (address, conn.port),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            ) from exc
        except OSError as exc:
            error = exc
    raise NewConnectionError(conn, f"Failed to establish a new connection: {error}")


class _PinnedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _pinned_socket(self)


class _PinnedHTTPSConnection(HTTPSConnection):
    # TLS still verifies the certificate for the URL's host name: only the socket is pinned.
    def _new_conn(self) -> socket.socket:
        return _pinned_socket(self)


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PinnedHTTPPool, "https": _PinnedHTTPSPool}


@dataclass(frozen=True)
class Answer:
    status_code: int
    excerpt: str
    location: str
    retry_after: str


def post(target: CallbackTarget, url: str, *, body: bytes, headers: Mapping[str, str]) -> Answer:
    """POSTs `body` to `url`, connecting only to `target`'s checked addresses, not following
    redirects, within CALLBACK_TIMEOUT_SECONDS to connect and again to answer. Raises
    requests' exceptions for network failures."""
    timeout = settings.CALLBACK_TIMEOUT_SECONDS
    token = _PINNED.set(target)
    try:
        with requests.Session() as session:
            session.trust_env = False  # an environment proxy would connect somewhere unchecked
            adapter = _PinnedAdapter(max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            response = session.post(
                url,
                data=body,
                headers={"User-Agent": USER_AGENT, **headers},
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
            )
            with response:
                head = next(response.iter_content(EXCERPT_BYTES), b"")[:EXCERPT_BYTES]
            return Answer(
                status_code=response.status_code,
                excerpt=head.decode("utf-8", errors="replace"),
                location=response.headers.get("Location", "")[:300],
                retry_after=response.headers.get("Retry-After", "")[:50],
            )
    finally:
        _PINNED.reset(token)
