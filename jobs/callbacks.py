"""Callback URLs: where a job's result may be POSTed.

A callback makes the hub send a request to an address the caller chose, so the address is
checked: http(s) only, and never a loopback, private, link-local or metadata address (the
check resolves the name, so `127.1`, `2130706433` and a DNS name pointing inside are caught
too), unless CALLBACK_ALLOWED_HOSTS names the host (development and tests).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


def callback_url_problem(url: str) -> str | None:
    """Why a callback URL is refused, or None when it is acceptable."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "callback_url is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "callback_url must be an http:// or https:// URL"
    if parts.username or parts.password:
        return "callback_url must not carry credentials"
    if host in settings.CALLBACK_ALLOWED_HOSTS:
        return None
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return f"callback_url host {host!r} does not resolve"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            return (
                f"callback_url host {host!r} resolves to a non-public address; callbacks go "
                "only to public addresses"
            )
    return None
