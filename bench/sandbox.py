"""The benchmarks' upstream: the Flickr sandbox in its own process (so it never shares a GIL with
the process that measures), quiet, with no quota until a row sets one, and a few counters the
sandbox's own do not keep:

    GET  /__bench/stats   successful calls, and per `bench_id` argument how often each was
                          answered (a job called twice shows up here), the first and last
                          successful call's time, the most calls in flight at once
    POST /__bench/reset   zero them (and the sandbox's counters and quota windows)

    python -m bench.sandbox --port 8099

No Django here: the sandbox is a plain WSGI application.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from flickr.fake import FakeFlickr, SandboxServer
from flickr.fake.counters import CallCounters, CallRecord

ID_ARG = "bench_id"


class BenchCounters(CallCounters):
    """The sandbox's counters, plus one count per `bench_id` of successful REST calls."""

    def reset(self) -> None:
        super().reset()
        self.by_id: Counter[str] = Counter()
        self.ok = 0
        self.first_ok: float | None = None
        self.last_ok: float | None = None

    def record(self, call: CallRecord) -> None:
        super().record(call)
        if call.endpoint != "rest" or call.status != 200 or call.error_code is not None:
            return
        with self._lock:
            self.ok += 1
            now = time.time()
            self.first_ok = self.first_ok or now
            self.last_ok = now
            bench_id = call.args.get(ID_ARG)
            if bench_id is not None:
                self.by_id[bench_id] += 1

    def stats(self) -> dict[str, Any]:
        snapshot = self.snapshot()
        with self._lock:
            return {
                "ok": self.ok,
                "total": snapshot["total"],
                "by_status": {str(k): v for k, v in snapshot["by_status"].items()},
                "by_method": snapshot["by_method"],
                "ids": len(self.by_id),
                "ids_called_more_than_once": sum(1 for n in self.by_id.values() if n > 1),
                "first_ok": self.first_ok,
                "last_ok": self.last_ok,
            }


class BenchSandbox:
    """WSGI: the sandbox, counting calls in flight, with the /__bench/ endpoints in front."""

    def __init__(self, app: FakeFlickr) -> None:
        self.app = app
        self.counters = BenchCounters(log_size=1000)
        app.counters = self.counters
        self._lock = threading.Lock()
        self.in_flight = 0
        self.in_flight_max = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/__bench/"):
            return self._bench(environ, start_response, path)
        with self._lock:
            self.in_flight += 1
            self.in_flight_max = max(self.in_flight_max, self.in_flight)
        try:
            return self.app(environ, start_response)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _bench(self, environ: dict[str, Any], start_response: Callable, path: str) -> Iterable[bytes]:
        if path == "/__bench/reset" and environ["REQUEST_METHOD"] == "POST":
            self.counters.reset()
            self.app.quota.reset()
            with self._lock:
                self.in_flight_max = self.in_flight
            body: dict[str, Any] = {"ok": True}
        elif path == "/__bench/stats":
            body = {**self.counters.stats(), "in_flight_max": self.in_flight_max}
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    app = FakeFlickr(seed=args.seed, quota_per_hour=None, control=True)
    server = SandboxServer(BenchSandbox(app), port=args.port, quiet=True).start()  # type: ignore[arg-type]
    print(f"bench sandbox on {server.url}", flush=True)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    while not stopping.wait(0.5):
        pass
    server.stop()


if __name__ == "__main__":
    main()
