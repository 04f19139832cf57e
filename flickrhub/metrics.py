"""Every Prometheus metric the hub exports, and one small function to record each.

Web processes serve them at `/metrics` (with django-prometheus's HTTP and database metrics);
worker pools serve theirs from a small exporter process that Dramatiq forks
(`WorkerMetricsMiddleware`, WORKER_METRICS_PORT). With several processes (gunicorn workers,
`rundramatiq -p N`) set PROMETHEUS_MULTIPROC_DIR to an empty directory before they start: each
process then writes its samples there and the exporter adds them up (prometheus-client's
multiprocess mode). The Docker entrypoint does this. Queue depths are read from the broker
when `/metrics` is scraped, not counted.

Names follow Prometheus conventions: counters end in `_total`, durations are `_seconds`
histograms, labels are low-cardinality (never a job id, a user id or a whole consumer key).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterator
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dramatiq
import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)

# Jobs take from milliseconds (a cached read) to an hour (a large upload over a slow link).
_JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_CALL_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120, 300)

JOBS = Counter(
    "flickrhub_jobs",
    "Jobs by queue and what happened to them: enqueued, completed, failed, retrying.",
    ["queue", "state", "method_class", "error_class"],
)
JOB_LATENCY = Histogram(
    "flickrhub_job_latency_seconds",
    "From the job's acceptance (queued) to its end (completed or failed).",
    ["queue", "state"],
    buckets=_JOB_BUCKETS,
)
FLICKR_CALL_SECONDS = Histogram(
    "flickrhub_flickr_call_duration_seconds",
    "One call to Flickr (REST, upload or replace), by method class and outcome.",
    ["method_class", "outcome"],
    buckets=_CALL_BUCKETS,
)
JOBS_IN_PROGRESS = Gauge(
    "flickrhub_jobs_in_progress",
    "Messages a worker is running right now.",
    ["queue"],
    multiprocess_mode="livesum",
)
CACHE_HITS = Counter("flickrhub_cache_hits", "Read calls answered from the response cache.", ["method_class"])
CACHE_MISSES = Counter(
    "flickrhub_cache_misses", "Cacheable calls the cache could not answer.", ["method_class"]
)
COALESCED_CALLS = Counter(
    "flickrhub_coalesced_calls",
    "Calls that waited for an identical call in flight instead of calling Flickr.",
)
QUOTA_REMAINING = Gauge(
    "flickrhub_quota_remaining",
    "Calls left in the current hour's quota of a Flickr API key (by the key's first characters).",
    ["consumer_key"],
    multiprocess_mode="mostrecent",
)
CIRCUIT_STATE = Gauge(
    "flickrhub_circuit_state",
    "Circuit breaker of a Flickr API key: 0 closed, 1 half-open (probing), 2 open.",
    ["consumer_key"],
    multiprocess_mode="mostrecent",
)
CALLBACK_DELIVERIES = Counter(
    "flickrhub_callback_deliveries", "Callback POSTs to integrators, by outcome.", ["outcome"]
)
OBS_EVENTS = Counter(
    "flickrhub_obs_events",
    "Log events for the external sink (OBS_API_URL): shipped, failed (the sink refused or was "
    "unreachable) or dropped (its buffer was full).",
    ["outcome"],
)

CIRCUIT_STATES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}
CONSUMER_KEY_LABEL_CHARS = 8


def consumer_key_label(consumer_key: str) -> str:
    """A Flickr API key as a label: its first characters, enough to tell keys apart."""
    return consumer_key[:CONSUMER_KEY_LABEL_CHARS]


def method_class(method: str) -> str:
    """`read` for methods the catalog lists as read-only, else `write` (uploads included)."""
    from flickr import catalog

    return "read" if catalog.is_read_only(method) else "write"


# --- recording: the functions the rest of the hub calls ------------------------------------------


def job_enqueued(*, queue: str, method: str) -> None:
    JOBS.labels(queue, "enqueued", method_class(method), "").inc()


def job_finished(
    *, queue: str, method: str, state: str, error_class: str = "", latency_seconds: float | None = None
) -> None:
    """A job reached `completed` or `failed`, or was scheduled `retrying` (no latency then)."""
    JOBS.labels(queue, state, method_class(method), error_class).inc()
    if latency_seconds is not None:
        JOB_LATENCY.labels(queue, state).observe(max(0.0, latency_seconds))


def flickr_call(*, method: str, outcome: str, seconds: float) -> None:
    FLICKR_CALL_SECONDS.labels(method_class(method), outcome).observe(seconds)


def job_started(*, queue: str) -> None:
    JOBS_IN_PROGRESS.labels(queue).inc()


def job_stopped(*, queue: str) -> None:
    JOBS_IN_PROGRESS.labels(queue).dec()


def cache_lookup(*, method: str, hit: bool) -> None:
    (CACHE_HITS if hit else CACHE_MISSES).labels(method_class(method)).inc()


def coalesced_call() -> None:
    COALESCED_CALLS.inc()


def quota_remaining(*, consumer_key: str, remaining: int) -> None:
    QUOTA_REMAINING.labels(consumer_key_label(consumer_key)).set(remaining)


def circuit_state(*, consumer_key: str, state: str) -> None:
    """`state`: closed, half_open or open."""
    CIRCUIT_STATE.labels(consumer_key_label(consumer_key)).set(CIRCUIT_STATES[state])


def callback_delivery(*, outcome: str) -> None:
    """`outcome`: sent, failed (given up) or retrying."""
    CALLBACK_DELIVERIES.labels(outcome).inc()


def obs_events(outcome: str, count: int = 1) -> None:
    OBS_EVENTS.labels(outcome).inc(count)


# --- exposition --------------------------------------------------------------------------------


class QueueDepthCollector(Collector):
    """Messages waiting in each queue, read from the broker at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from flickrhub.queues import queue_depths

        family = GaugeMetricFamily(
            "flickrhub_queue_depth",
            "Messages waiting in a queue: ready to run, delayed (retries) or dead-lettered.",
            labels=["queue", "kind"],
        )
        up = GaugeMetricFamily("flickrhub_broker_up", "1 if the broker answered the queue-depth query.")
        depths = queue_depths()
        up.add_metric([], 0 if depths.error else 1)
        for queue, counts in depths.queues.items():
            for kind, value in counts.items():
                family.add_metric([queue, kind], value)
        yield family
        yield up


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or ""


def exposition(*, queues: bool) -> bytes:
    """The metrics of this process, or of every process sharing PROMETHEUS_MULTIPROC_DIR."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        output = generate_latest(registry)
    else:
        output = generate_latest(REGISTRY)
    if queues:
        extra = CollectorRegistry()
        extra.register(QueueDepthCollector())
        output += generate_latest(extra)
    return output


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in spec if n.strip())


def access_problem(*, remote_addr: str, authorization: str) -> tuple[int, str] | None:
    """Why a scrape is refused (status, message), or None. A scrape is let in when it comes
    from METRICS_ALLOWED_NETWORKS or carries `Authorization: Bearer <METRICS_TOKEN>`."""
    token = settings.METRICS_TOKEN
    if token and authorization:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return 401, "metrics: wrong token (send Authorization: Bearer <METRICS_TOKEN>)\n"
    try:
        address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        address = None
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if any(address in net for net in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS))):
            return None
    if token:
        return 401, "metrics: send Authorization: Bearer <METRICS_TOKEN>\n"
    return 403, "metrics: this address is not in METRICS_ALLOWED_NETWORKS\n"


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics — restricted by METRICS_ALLOWED_NETWORKS or METRICS_TOKEN."""
    problem = access_problem(
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        authorization=request.headers.get("Authorization", ""),
    )
    if problem is not None:
        status, message = problem
        response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(queues=True), content_type=CONTENT_TYPE_LATEST)


# --- the worker pools' exporter ----------------------------------------------------------------


class _WorkerMetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/healthz":
            self._answer(200, b'{"status": "ok"}\n', "application/json")
            return
        if self.path.split("?", 1)[0] != "/metrics":
            self._answer(404, b"not found: try /metrics\n", "text/plain; charset=utf-8")
            return
        problem = access_problem(
            remote_addr=self.client_address[0], authorization=self.headers.get("Authorization", "")
        )
        if problem is not None:
            self._answer(problem[0], problem[1].encode(), "text/plain; charset=utf-8")
            return
        self._answer(200, exposition(queues=False), CONTENT_TYPE_LATEST)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not news


def serve_worker_metrics() -> int:
    """Dramatiq fork: serves the pool's metrics (all its processes, through
    PROMETHEUS_MULTIPROC_DIR) on WORKER_METRICS_HOST:WORKER_METRICS_PORT until stopped."""
    address = (settings.WORKER_METRICS_HOST, settings.WORKER_METRICS_PORT)
    try:
        server = ThreadingHTTPServer(address, _WorkerMetricsHandler)
    except OSError as exc:
        log.error(
            "worker_metrics_unavailable",
            port=settings.WORKER_METRICS_PORT,
            error=str(exc),
            message="Another process holds the port: give each worker pool on a host its own "
            "WORKER_METRICS_PORT.",
        )
        return 1
    log.info("worker_metrics_serving", host=address[0], port=address[1])
    server.serve_forever()
    return 0


class WorkerMetricsMiddleware(dramatiq.Middleware):
    """Counts messages in progress per queue, and has Dramatiq fork the metrics exporter next
    to the worker processes (only with PROMETHEUS_MULTIPROC_DIR: without it the exporter
    could not see the workers' samples)."""

    @property
    def forks(self) -> list[Any]:
        if settings.WORKER_METRICS_PORT and multiprocess_dir():
            return [serve_worker_metrics]
        return []

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        if settings.WORKER_METRICS_PORT and not multiprocess_dir() and not settings.EMBEDDED_BROKER:
            log.warning(
                "worker_metrics_off",
                message="Set PROMETHEUS_MULTIPROC_DIR (an empty directory) for the worker pool to "
                "export its metrics on WORKER_METRICS_PORT.",
            )

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        job_started(queue=message.queue_name.removesuffix(".DQ"))

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        job_stopped(queue=message.queue_name.removesuffix(".DQ"))

    after_skip_message = after_process_message

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if multiprocess_dir():
            multiprocess.mark_process_dead(os.getpid())
