"""manage.py fake_flickr: serve the Flickr sandbox until Ctrl-C or SIGTERM.

Flags win over the environment (FAKE_FLICKR_HOST, FAKE_FLICKR_PORT, FAKE_FLICKR_SEED,
FAKE_FLICKR_LATENCY_MS, FAKE_FLICKR_QUOTA_PER_HOUR, FAKE_FLICKR_CONTROL), which wins over
the defaults.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, FakeFlickr, SandboxServer

UNLIMITED = ("none", "unlimited", "off")


def quota_value(raw: str) -> int | None:
    """An hourly quota: a number of calls, or none/unlimited/off for no limit."""
    if raw.strip().lower() in UNLIMITED:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of calls: {raw!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a quota cannot be negative")
    return value


def _env(name: str, default: str) -> str:
    return os.environ.get(f"FAKE_FLICKR_{name}", default)


def env_lines(base_url: str) -> list[str]:
    """The settings a hub needs to talk to this sandbox instead of Flickr."""
    return [
        f"FLICKR_API_KEY={SANDBOX_CONSUMER_KEY}",
        "# sandbox only: the sandbox app's public test secret, useless against flickr.com",
        f"FLICKR_API_SECRET={SANDBOX_CONSUMER_SECRET}",
        f"FLICKR_REST_URL={base_url}/services/rest/",
        f"FLICKR_UPLOAD_URL={base_url}/services/upload/",
        f"FLICKR_REPLACE_URL={base_url}/services/replace/",
        f"FLICKR_OAUTH_REQUEST_TOKEN_URL={base_url}/services/oauth/request_token",
        f"FLICKR_OAUTH_AUTHORIZE_URL={base_url}/services/oauth/authorize",
        f"FLICKR_OAUTH_ACCESS_TOKEN_URL={base_url}/services/oauth/access_token",
    ]


def banner(app: FakeFlickr, base_url: str) -> str:
    """What the command prints at start-up. Never a user's token secret."""
    demo = app.state.demo_user
    quota = "unlimited" if app.quota.per_hour is None else f"{app.quota.per_hour} calls/hour/key"
    latency = f", {app.latency_ms:g} ms added latency" if app.latency_ms else ""
    lines = [
        f"Flickr sandbox on {base_url} (seed {app.state.seed}, quota {quota}{latency})",
        f"  consumer key:                   {SANDBOX_CONSUMER_KEY}",
        f"  consumer secret (sandbox only): {SANDBOX_CONSUMER_SECRET}",
        f"  demo user:                      {demo.nsid} ({demo.username}, {demo.fullname})",
    ]
    if app.control:
        lines += [
            f"  control endpoint:               {base_url}/__sandbox/",
            "  a token for the demo user:      "
            f'curl -X POST -d \'{{"perms": "write"}}\' {base_url}/__sandbox/tokens',
        ]
    lines += ["", "Point a hub at it with:", *(f"  {line}" for line in env_lines(base_url))]
    lines += ["", "Ctrl-C or SIGTERM stops it."]
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Serve the Flickr sandbox (a faithful fake of Flickr's API) until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=_env("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(_env("PORT", "8099")))
        parser.add_argument("--seed", type=int, default=int(_env("SEED", "1")))
        parser.add_argument(
            "--latency-ms",
            type=float,
            default=float(_env("LATENCY_MS", "0")),
            help="added to every API call",
        )
        parser.add_argument(
            "--quota-per-hour",
            type=quota_value,
            default=quota_value(_env("QUOTA_PER_HOUR", "3600")),
            help="calls per consumer key per hour, or 'unlimited'",
        )
        parser.add_argument(
            "--no-control",
            action="store_true",
            default=_env("CONTROL", "1") in ("0", "false", "no"),
            help="do not serve the /__sandbox/ control endpoint",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        app = FakeFlickr(
            seed=options["seed"],
            quota_per_hour=options["quota_per_hour"],
            latency_ms=options["latency_ms"],
            control=not options["no_control"],
        )
        server = SandboxServer(app, host=options["host"], port=options["port"], quiet=False)
        server.start()
        self.stdout.write(banner(app, server.url))
        self.stdout.flush()
        stopping = threading.Event()
        previous = {
            sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            while not stopping.wait(0.5):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            server.stop()
            self.stdout.write("Flickr sandbox stopped.")
