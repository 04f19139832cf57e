"""Load generators and timers: wrk for request rates, Python clients for counted job loads and
for sequential latencies, and the direct `flickrapi` call that is the latency baseline."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
%(headers)s
done = function(summary, latency, requests)
  io.write(string.format(
    'WRK_RESULT {"requests": %%d, "duration_us": %%d, "non_2xx": %%d, "socket_errors": %%d, '
    .. '"p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def ensure_wrk() -> str:
    """wrk from Debian, installed when missing (the bench runs as root on these machines)."""
    path = shutil.which("wrk")
    if path:
        return path
    print("bench: installing wrk (apt-get install -y wrk)", flush=True)
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(install, check=True, capture_output=True)
    path = shutil.which("wrk")
    if not path:
        raise RuntimeError("wrk is not installed and could not be installed")
    return path


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


def wrk_post(
    url: str,
    body: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    connections: int = 32,
    seconds: float = 10,
    threads: int = 2,
) -> WrkResult:
    lua_headers = "\n".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in (headers or {}).items()
    )
    script = _WRK_SCRIPT % {"body": json.dumps(json.dumps(body)), "headers": lua_headers}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        done = subprocess.run(
            [
                ensure_wrk(),
                "-t",
                str(threads),
                "-c",
                str(connections),
                "-d",
                f"{seconds:g}s",
                "--timeout",
                "10s",
                "-s",
                path,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    finally:
        Path(path).unlink()
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT "))
    raw = json.loads(line.removeprefix("WRK_RESULT "))
    return WrkResult(
        rps=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        requests=raw["requests"],
        non_2xx=raw["non_2xx"],
        socket_errors=raw["socket_errors"],
    )


class HubClient:
    """Talks to one hub's REST API with an API key (a keep-alive session per thread)."""

    def __init__(self, url: str, api_key: str, user_id: str) -> None:
        self.url = url
        self.api_key = api_key
        self.user_id = user_id
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self.api_key}"
        return session

    def enqueue(
        self, method: str, params: dict[str, Any], *, wait: float | None = None, timeout: float = 60
    ) -> requests.Response:
        url = f"{self.url}/api/v1/flickr/rest" + (f"?wait={wait:g}" if wait else "")
        return self._session().post(
            url, json={"method": method, "params": params, "user_id": self.user_id}, timeout=timeout
        )

    def enqueue_many(
        self,
        calls: Iterable[tuple[str, dict[str, Any]]],
        *,
        concurrency: int = 16,
        rate: float | None = None,
    ) -> Counter[int]:
        """Sends every call; with `rate`, call n leaves at start + n/rate. Returns the statuses."""
        statuses: Counter[int] = Counter()
        lock = threading.Lock()
        started = time.monotonic()

        def send(item: tuple[int, tuple[str, dict[str, Any]]]) -> None:
            n, (method, params) = item
            if rate:
                time.sleep(max(0.0, started + n / rate - time.monotonic()))
            try:
                status = self.enqueue(method, params).status_code
            except requests.RequestException:
                status = 0
            with lock:
                statuses[status] += 1

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(send, enumerate(calls)))
        return statuses


def timed(call: Callable[[], Any]) -> float:
    """Milliseconds one call took."""
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def direct_flickr(sandbox_url: str, world: dict[str, str]) -> Any:
    """The baseline client: the real `flickrapi`, pointed at the sandbox, as the hub's account."""
    import flickrapi
    import flickrapi.auth

    from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET

    token = flickrapi.auth.FlickrAccessToken(
        world["token"], world["token_secret"], "write", "", "", world["nsid"]
    )
    flickr = flickrapi.FlickrAPI(
        SANDBOX_CONSUMER_KEY,
        SANDBOX_CONSUMER_SECRET,
        token=token,
        format="parsed-json",
        store_token=False,
        timeout=30,
    )
    flickr.REST_URL = f"{sandbox_url}/services/rest/"
    return flickr
