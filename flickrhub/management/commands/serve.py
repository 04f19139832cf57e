"""manage.py serve — the whole hub in one process (the embedded default).

Serves the web app with waitress and, when no BROKER_URL is set, runs the Dramatiq workers in
this process on the in-memory broker, one worker pool per queue. Unfinished jobs from a previous
run are published again at start, so a restart loses nothing. With FLICKR_SANDBOX=1 it also
serves the sandbox Flickr, points the hub at it and links a demo account.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import dramatiq
import structlog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

log = structlog.get_logger(__name__)


class Command(BaseCommand):
    help = "Run the hub in one process: web server, and (embedded default) its workers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", "8")))

    def handle(self, *args: Any, host: str, port: int, threads: int, **options: Any) -> None:
        from waitress.server import create_server

        # Static files are served from the apps' own folders (WHITENOISE_USE_FINDERS) until
        # `collectstatic` fills STATIC_ROOT; without the folder WhiteNoise warns at every start.
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        from flickrhub.wsgi import application

        base_url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"  # noqa: S104
        sandbox_lines: list[str] = []
        if settings.FLICKR_SANDBOX:
            sandbox_lines = self._start_sandbox(base_url)

        workers = self._start_workers() if settings.EMBEDDED_BROKER else []
        server = create_server(application, host=host, port=port, threads=threads)

        def stop(signum: int, frame: Any) -> None:
            # waitress ends its loop on SystemExit, once its threads finish the requests in
            # hand (a few seconds at most). Closing the server from here instead could leave
            # the loop polling a connection that never closes, so the hub did not stop. A
            # second Ctrl-C does not cut the workers' shutdown short: that is bounded too.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            raise SystemExit(0)

        try:
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            self._banner(base_url, sandbox_lines, embedded=bool(workers))
            server.run()
        finally:
            for worker in workers:
                # Jobs in hand get a bounded time to finish; what is left stays `running` and is
                # picked up again at the next start.
                worker.stop(timeout=settings.WORKER_SHUTDOWN_TIMEOUT_MS)
            self.stdout.write("FlickrHub stopped.")

    def _start_workers(self) -> list[dramatiq.Worker]:
        from jobs.callbacks import deliveries_recover_embedded
        from jobs.services import jobs_recover_embedded

        recovered = jobs_recover_embedded()
        if recovered:
            log.info("jobs_recovered_at_start", count=recovered)
        callbacks = deliveries_recover_embedded()
        if callbacks:
            log.info("callbacks_recovered_at_start", count=callbacks)
        broker = dramatiq.get_broker()
        broker.emit_after("process_boot")
        # One in-process worker for the four queues (Dramatiq's worker middleware is per
        # broker, so one worker per queue is not an option here); its threads are the sum of the
        # per-queue concurrencies.
        threads = (
            settings.WORKER_REST_CONCURRENCY
            + settings.WORKER_UPLOAD_CONCURRENCY
            + settings.WORKER_REPLACE_CONCURRENCY
            + settings.WORKER_CALLBACK_CONCURRENCY
        )
        worker = dramatiq.Worker(
            broker, worker_threads=max(1, threads), worker_timeout=settings.WORKER_POLL_MS
        )
        worker.start()
        return [worker]

    def _start_sandbox(self, base_url: str) -> list[str]:
        from flickrhub.sandbox import sandbox_start

        demo = sandbox_start(port=settings.FLICKR_SANDBOX_PORT)
        return [
            f"Sandbox Flickr:   {demo.sandbox_url}  (a stand-in for Flickr; nothing reaches the internet)",
            f"Demo API client:  {demo.client_name} — API key (new at every start): {demo.api_key}",
            f"Demo account:     user_id {demo.user_id} (sandbox user {demo.username})",
            "Try it:",
            f"  curl -s -X POST {base_url}/api/v1/flickr/rest \\",
            f"    -H 'Authorization: Bearer {demo.api_key}' -H 'Content-Type: application/json' \\",
            f'    -d \'{{"method": "flickr.test.login", "params": {{}}, "user_id": "{demo.user_id}"}}\'',
            "  then GET the status_url from the answer with the same Authorization header.",
        ]

    def _banner(self, base_url: str, sandbox_lines: list[str], *, embedded: bool) -> None:
        lines = [
            "",
            f"FlickrHub is running at {base_url}/",
            f"  API docs:   {base_url}/api/docs/",
            f"  Admin:      {base_url}/admin/  (create a login: .venv/bin/python manage.py createsuperuser)",
            "  API key:    .venv/bin/python manage.py create_api_client NAME  (prints a new key once)",
            "  Mode:       "
            + (
                "embedded (SQLite, in-process workers, local cache)"
                if embedded
                else "web only (workers run as `manage.py rundramatiq`)"
            ),
            *sandbox_lines,
            "Stop with Ctrl-C.",
            "",
        ]
        self.stdout.write("\n".join(lines))
