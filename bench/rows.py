"""The benchmark rows of issue 9, each measured against its baseline in the same run.

Every row takes the stack and the sizes and returns one `Row` per shape it measures (the
production shape, and for the first four rows the embedded default too).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import fairness, targets
from bench.load import HubClient, direct_flickr, timed, wrk_post
from bench.stack import BenchStack, wait_until
from bench.stats import median, paired_ratio, percentile, ratios, share
from tests.stack import Hub, rss_mb

ECHO = "flickr.test.echo"
GET_INFO = "flickr.people.getInfo"


@dataclass(frozen=True)
class Sizes:
    quick: bool
    runs: int
    enqueue_seconds: float
    warmup_seconds: float
    throughput_jobs: int
    latency_jobs: int
    latency_calls: int
    cache_calls: int
    quota_window: float
    quota_allowed: int
    quota_seconds: float
    backlog_jobs: int
    memory_jobs: int
    throughput_runs: int

    @classmethod
    def of(
        cls,
        quick: bool,
        runs: int | None = None,
        *,
        throughput_runs: int | None = None,
        backlog_jobs: int | None = None,
        memory_jobs: int | None = None,
    ) -> Sizes:
        runs = runs or (1 if quick else 3)
        if quick:
            sizes = (3, 1, 2000, 1500, 30, 30, 20, 100, 40, 3000, 1500)
        else:
            sizes = (10, 2, 20_000, 8000, 200, 200, 60, 300, 600, 100_000, 10_000)
        built = cls(quick, runs, *sizes, throughput_runs or runs)  # type: ignore[arg-type]
        if backlog_jobs:
            built = dataclasses.replace(built, backlog_jobs=backlog_jobs)
        if memory_jobs:
            built = dataclasses.replace(built, memory_jobs=memory_jobs)
        return built


@dataclass
class Row:
    key: str
    title: str
    shape: str
    figure: str
    baseline: str
    ratio: str
    target: str
    met: bool | None
    notes: list[str] = field(default_factory=list)


PRODUCTION, EMBEDDED = "production", "embedded"
# The production shape's processes: two web processes (this machine has two cores) of four
# threads, and one worker process per queue with the default WORKER_REST_CONCURRENCY threads.
WEB_WORKERS, WEB_THREADS, WORKER_THREADS = 2, 4, 8
# The embedded process runs one in-process worker for all queues, with the sum of the queues'
# default concurrencies as threads (8 + 2 + 2 + 4).
EMBEDDED_THREADS = 16


def _fmt_runs(values: list[float], unit: str, digits: int = 1) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values) + f" {unit}"


def _fmt_shares(values: list[float]) -> str:
    return ", ".join(f"{v:.0%}" for v in values)


# How the enqueue and throughput rows' ratios are taken (bench.stats.paired_ratio).
_PAIRED = "median of the runs' own ratios"


def _web(stack: BenchStack, **overrides: str) -> tuple[Hub, HubClient]:
    hub = stack.hub(**overrides)
    hub.start_web(WEB_WORKERS, WEB_THREADS)
    world = stack.world
    return hub, HubClient(hub.url, world["api_key"], world["user_id"])


def _done(stack: BenchStack, embedded: bool, total: int) -> Callable[[], bool]:
    db = stack.jobs_db(embedded)

    def check() -> bool:
        states = db.states()
        return states.get("completed", 0) + states.get("failed", 0) >= total

    return check


def _rate(stats: dict[str, Any]) -> float:
    span = (stats["last_ok"] or 0) - (stats["first_ok"] or 0)
    return (stats["ok"] - 1) / span if span > 0 else 0.0


def _alternating(runs: int, hub: Callable[[int], None], baseline: Callable[[int], None]) -> None:
    """Measures the figure and its baseline `runs` times, alternating which goes first, so a
    machine that slows down or speeds up during the row weighs on both alike."""
    for run in range(runs):
        for measure in (hub, baseline) if run % 2 == 0 else (baseline, hub):
            measure(run)


# ---------------------------------------------------------------------- 1. enqueue capacity


def enqueue_capacity(stack: BenchStack, sizes: Sizes, shape: str) -> Row:
    embedded = shape == EMBEDDED
    stack.fresh(embedded=embedded)
    if embedded:
        url, world = stack.start_embedded(), stack.embedded_world
    else:
        hub, _ = _web(stack)
        url, world = hub.url, stack.world
    body = {"method": ECHO, "params": {"bench_id": "enqueue"}, "user_id": world["user_id"]}
    auth = {"Authorization": f"Bearer {world['api_key']}"}
    db = stack.jobs_db(embedded)

    def settle() -> None:
        # Jobs from the last measurement are run (embedded) or dropped (production: no
        # workers), so every measurement starts from empty queues and tables.
        if embedded:
            wait_until(
                lambda: not ({"queued", "running", "retrying"} & set(db.states())),
                timeout=600,
                what="the embedded workers to finish the last measurement's jobs",
            )
        stack.fresh(embedded=embedded)

    wrk_post(f"{url}/api/v1/flickr/rest", body, headers=auth, seconds=sizes.warmup_seconds)
    wrk_post(f"{url}/bench/insert", body, seconds=sizes.warmup_seconds)
    results: dict[str, list[Any]] = {"hub": [], "baseline": []}

    def via_hub(_run: int) -> None:
        settle()
        results["hub"].append(
            wrk_post(f"{url}/api/v1/flickr/rest", body, headers=auth, seconds=sizes.enqueue_seconds)
        )

    def via_baseline(_run: int) -> None:
        settle()
        results["baseline"].append(wrk_post(f"{url}/bench/insert", body, seconds=sizes.enqueue_seconds))

    _alternating(sizes.runs, via_hub, via_baseline)
    if embedded:
        stack.stop_embedded()
    else:
        hub.stop()
    rps = {side: [r.rps for r in runs] for side, runs in results.items()}
    p99 = {side: [r.p99_ms for r in runs] for side, runs in results.items()}
    hub_rps, base_rps = median(rps["hub"]), median(rps["baseline"])
    hub_p99, base_p99 = median(p99["hub"]), median(p99["baseline"])
    errors = sum(r.non_2xx + r.socket_errors for r in results["hub"] + results["baseline"])
    ratio_rps = paired_ratio(rps["hub"], rps["baseline"])
    ratio_p99 = paired_ratio(p99["hub"], p99["baseline"], no_baseline=float("inf"))
    notes = [
        f"hub req/s per run: {_fmt_runs(rps['hub'], 'req/s', 0)}; "
        f"baseline: {_fmt_runs(rps['baseline'], 'req/s', 0)}; "
        f"per-run ratio {_fmt_shares(ratios(rps['hub'], rps['baseline']))}",
        f"p99 per run: hub {_fmt_runs(p99['hub'], 'ms')}; baseline {_fmt_runs(p99['baseline'], 'ms')}; "
        f"per-run ratio {_fmt_runs(ratios(p99['hub'], p99['baseline']), '×', 2)}",
    ]
    if errors:
        notes.append(f"{errors} answers were not 2xx or failed at the socket")
    if embedded:
        notes.append("the in-process workers run the accepted jobs meanwhile, as the embedded default does")
    return Row(
        "enqueue",
        "enqueue capacity",
        shape,
        f"{hub_rps:.0f} req/s, p99 {hub_p99:.1f} ms",
        f"{base_rps:.0f} req/s, p99 {base_p99:.1f} ms",
        f"{ratio_rps:.0%} of req/s; p99 {ratio_p99:.2f}× ({_PAIRED})",
        targets.ENQUEUE,
        targets.enqueue(ratio_rps, ratio_p99, errors),
        notes,
    )


# ---------------------------------------------------------------------- 2 & 3. throughput


def _enqueue_backlog(
    stack: BenchStack, client: HubClient, count: int, prefix: str, method: str = ECHO
) -> None:
    statuses = client.enqueue_many((method, {"bench_id": f"{prefix}-{n}"}) for n in range(count))
    if statuses != {202: count}:
        raise RuntimeError(f"bench: enqueueing {count} jobs answered {dict(statuses)}")


def _hub_drain(
    stack: BenchStack,
    count: int,
    prefix: str,
    *,
    processes: int,
    threads: int,
    overrides: dict[str, str],
    latency_ms: float = 0,
) -> dict[str, Any]:
    """Production: `count` jobs queued with no worker running (`bench.seed`), then one worker
    pool started; the rate is upstream calls per second between the first and the last."""
    stack.fresh()
    assert stack.sandbox is not None
    if latency_ms:
        stack.sandbox.fault("latency", method=ECHO, ms=latency_ms)
    hub = stack.hub(**overrides)
    stack.seed(count, prefix, embedded=False)
    stack.sandbox.reset_counters()
    hub.start_worker("flickr_rest", threads=threads, processes=processes)
    wait_until(_done(stack, False, count), timeout=3600, interval=1, what=f"{count} jobs to end")
    hub.stop()
    stats = stack.sandbox.stats()
    states = stack.jobs_db(False).states()
    return {"rate": _rate(stats), "stats": stats, "states": states}


def _embedded_drain(
    stack: BenchStack, count: int, prefix: str, *, overrides: dict[str, str], latency_ms: float = 0
) -> dict[str, Any]:
    """Embedded: the jobs are written to its SQLite database, then `manage.py serve` starts,
    publishes the unfinished jobs and runs them."""
    stack.fresh(embedded=True)
    assert stack.sandbox is not None
    if latency_ms:
        stack.sandbox.fault("latency", method=ECHO, ms=latency_ms)
    stack.seed(count, prefix, embedded=True)
    stack.sandbox.reset_counters()
    stack.start_embedded(**overrides)
    wait_until(_done(stack, True, count), timeout=3600, interval=1, what=f"{count} embedded jobs to end")
    stack.stop_embedded()
    stats = stack.sandbox.stats()
    return {"rate": _rate(stats), "stats": stats, "states": stack.jobs_db(True).states()}


def _bare_drain(
    stack: BenchStack, count: int, prefix: str, *, processes: int, threads: int, latency_ms: float = 0
) -> dict[str, Any]:
    import subprocess
    import sys

    from tests.stack import ROOT

    stack.fresh()
    assert stack.sandbox is not None
    if latency_ms:
        stack.sandbox.fault("latency", method=ECHO, ms=latency_ms)
    if threads and processes:
        stack.bare_enqueue(count, prefix)
        stack.sandbox.reset_counters()
        worker = stack.bare_worker(threads=threads, processes=processes)
        try:
            # A bare message lost would leave the drain short for good: fail after 2 minutes
            # without a call rather than wait out the hour.
            def calls() -> int:
                return int(stack.sandbox.stats()["ok"])  # type: ignore[union-attr]

            wait_until(lambda: calls() >= count, 3600, 1, f"{count} bare calls", progress=calls, stall=120)
        finally:
            from bench.stack import _terminate

            _terminate(worker)
    else:  # the embedded baseline: StubBroker and an in-process worker
        subprocess.run(
            [sys.executable, "-m", "bench.bare_actor", "--jobs", str(count), "--threads", str(-threads)],
            cwd=ROOT,
            env=stack.bare_env(stub=True),
            check=True,
            timeout=3600,
            capture_output=True,
        )
    stats = stack.sandbox.stats()
    return {"rate": _rate(stats), "stats": stats}


def throughput_fast(stack: BenchStack, sizes: Sizes, shape: str) -> Row:
    embedded = shape == EMBEDDED
    count = sizes.throughput_jobs
    hub_rates: list[float] = []
    bare_rates: list[float] = []
    problems: list[str] = []

    def via_hub(run: int) -> None:
        result = (
            _embedded_drain(stack, count, f"t{run}", overrides={})
            if embedded
            else _hub_drain(stack, count, f"t{run}", processes=1, threads=WORKER_THREADS, overrides={})
        )
        if result["states"].get("completed") != count:
            problems.append(f"run {run + 1}: job states {result['states']}")
        hub_rates.append(result["rate"])

    def via_bare(run: int) -> None:
        result = (
            _bare_drain(stack, count, f"b{run}", processes=0, threads=-EMBEDDED_THREADS)
            if embedded
            else _bare_drain(stack, count, f"b{run}", processes=1, threads=WORKER_THREADS)
        )
        bare_rates.append(result["rate"])

    _alternating(sizes.throughput_runs, via_hub, via_bare)
    hub, bare = median(hub_rates), median(bare_rates)
    ratio = paired_ratio(hub_rates, bare_rates)
    threads = EMBEDDED_THREADS if embedded else WORKER_THREADS
    return Row(
        "throughput",
        f"end-to-end throughput, fast upstream ({count:,} jobs)",
        shape,
        f"{hub:.0f} jobs/s",
        f"{bare:.0f} jobs/s (bare Dramatiq actor, {threads} threads)",
        f"{ratio:.0%} ({_PAIRED})",
        targets.THROUGHPUT,
        targets.throughput(ratio, problems),
        [
            f"hub per run: {_fmt_runs(hub_rates, 'jobs/s', 0)}; bare: {_fmt_runs(bare_rates, 'jobs/s', 0)}; "
            f"per-run ratio {_fmt_shares(ratios(hub_rates, bare_rates))}",
            (
                "jobs written to the SQLite file first (`bench.seed`), then `manage.py serve` "
                "started, published and ran them"
                if embedded
                else f"jobs queued first (`bench.seed`: rows and confirmed messages as the API makes "
                f"them), then one worker process × {WORKER_THREADS} threads started"
            ),
            *problems,
        ],
    )


LATENCY_MS = 200


def throughput_latency(stack: BenchStack, sizes: Sizes, shape: str) -> Row:
    """Against the issue's bound (threads × 1/latency), and, as a reference of what this machine
    allows, against the bare Dramatiq actor with the same threads and the same 200 ms upstream:
    on 2 cores the CPU each call costs, not the threads, sets the ceiling, for both."""
    embedded = shape == EMBEDDED
    count = sizes.latency_jobs
    processes, threads = (1, 200) if embedded else (2, 100)
    total_threads = processes * threads
    bound = total_threads * 1000 / LATENCY_MS
    rates: list[float] = []
    in_flight: list[int] = []
    bare_rates: list[float] = []
    bare_flight: list[int] = []
    problems: list[str] = []
    assert stack.sandbox is not None

    def via_hub(run: int) -> None:
        if embedded:
            overrides = {"WORKER_REST_CONCURRENCY": str(threads)}
            result = _embedded_drain(stack, count, f"l{run}", overrides=overrides, latency_ms=LATENCY_MS)
        else:
            overrides = {"DB_POOL_MAX_SIZE": "20"}
            result = _hub_drain(
                stack,
                count,
                f"l{run}",
                processes=processes,
                threads=threads,
                overrides=overrides,
                latency_ms=LATENCY_MS,
            )
        if result["states"].get("completed") != count:
            problems.append(f"run {run + 1}: job states {result['states']}")
        rates.append(result["rate"])
        in_flight.append(result["stats"]["in_flight_max"])

    def via_bare(run: int) -> None:
        # the embedded baseline: the in-memory broker, in one process (processes=0)
        bare = _bare_drain(
            stack,
            count,
            f"lb{run}",
            processes=0 if embedded else processes,
            threads=-threads if embedded else threads,
            latency_ms=LATENCY_MS,
        )
        bare_rates.append(bare["rate"])
        bare_flight.append(bare["stats"]["in_flight_max"])

    _alternating(sizes.throughput_runs, via_hub, via_bare)
    stack.sandbox.clear_faults()
    rate, bare_rate = median(rates), median(bare_rates)
    flight = max(in_flight)
    return Row(
        "latency-throughput",
        f"end-to-end throughput, {LATENCY_MS} ms upstream ({count:,} jobs)",
        shape,
        f"{rate:.0f} jobs/s; up to {flight} calls in flight",
        f"{bound:.0f} jobs/s ({total_threads} threads × 1/{LATENCY_MS} ms); the bare Dramatiq actor "
        f"with the same threads: {bare_rate:.0f} jobs/s, up to {max(bare_flight)} in flight",
        f"{share(rate, bound):.0%} of the bound ({paired_ratio(rates, bare_rates):.0%} of the bare actor)",
        targets.LATENCY_THROUGHPUT,
        targets.latency_throughput(rate, bound, flight, problems),
        [
            f"per run: {_fmt_runs(rates, 'jobs/s', 0)}; most calls in flight per run: {in_flight}",
            f"bare actor per run: {_fmt_runs(bare_rates, 'jobs/s', 0)}; most calls in flight per run: "
            f"{bare_flight}",
            (
                f"one process, WORKER_REST_CONCURRENCY={threads}; the bare actor in one process "
                f"with the in-memory broker, {threads} threads"
                if embedded
                else f"{processes} worker processes × {threads} threads, DB_POOL_MAX_SIZE=20; the bare "
                f"actor as {processes} processes × {threads} threads on RabbitMQ"
            ),
            *problems,
        ],
    )


# ---------------------------------------------------------------------- 4. added latency

ADDED_LATENCY_MS = 50


def added_latency(stack: BenchStack, sizes: Sizes, shape: str) -> Row:
    embedded = shape == EMBEDDED
    stack.fresh(embedded=embedded)
    assert stack.sandbox is not None
    hub: Hub | None = None
    if embedded:
        url, world = stack.start_embedded(), stack.embedded_world
    else:
        hub, _ = _web(stack)
        hub.start_worker("flickr_rest", threads=WORKER_THREADS)
        url, world = hub.url, stack.world
    client = HubClient(url, world["api_key"], world["user_id"])
    direct = direct_flickr(stack.sandbox.url, world)
    stack.sandbox.fault("latency", method=ECHO, ms=ADDED_LATENCY_MS)

    def via_hub(bench_id: str) -> None:
        answer = client.enqueue(ECHO, {"bench_id": bench_id}, wait=10)
        if answer.status_code != 200 or answer.json()["data"]["state"] != "completed":
            raise RuntimeError(f"bench: ?wait answered {answer.status_code} {answer.text[:300]}")

    def via_flickrapi(bench_id: str) -> None:
        direct.test.echo(bench_id=bench_id)

    for n in range(5):  # warm both paths (connections, imports, the worker's session)
        via_hub(f"warm-{n}")
        via_flickrapi(f"warm-d-{n}")
    runs: list[dict[str, float]] = []
    for run in range(sizes.runs):
        ids = [f"{run}-{n}" for n in range(sizes.latency_calls)]
        hub_ms = [timed(lambda i=i: via_hub(f"a{i}")) for i in ids]  # type: ignore[misc]
        direct_ms = [timed(lambda i=i: via_flickrapi(f"d{i}")) for i in ids]  # type: ignore[misc]
        runs.append(
            {
                "hub_p50": percentile(hub_ms, 50),
                "hub_p99": percentile(hub_ms, 99),
                "direct_p50": percentile(direct_ms, 50),
                "direct_p99": percentile(direct_ms, 99),
            }
        )
    stack.sandbox.clear_faults()
    if embedded:
        stack.stop_embedded()
    elif hub is not None:
        hub.stop()
    over50 = median([r["hub_p50"] - r["direct_p50"] for r in runs])
    over99 = median([r["hub_p99"] - r["direct_p99"] for r in runs])
    med = {k: median([r[k] for r in runs]) for k in runs[0]}
    return Row(
        "added-latency",
        f"added latency (`?wait`, sandbox {ADDED_LATENCY_MS} ms, sequential, {sizes.latency_calls} calls)",
        shape,
        f"p50 {med['hub_p50']:.1f} ms, p99 {med['hub_p99']:.1f} ms",
        f"p50 {med['direct_p50']:.1f} ms, p99 {med['direct_p99']:.1f} ms (direct `flickrapi`)",
        f"+{over50:.1f} ms p50, +{over99:.1f} ms p99",
        targets.ADDED_LATENCY,
        targets.added_latency(over50, over99),
        [
            "overhead per run (p50 / p99): "
            + "; ".join(
                f"+{r['hub_p50'] - r['direct_p50']:.1f} / +{r['hub_p99'] - r['direct_p99']:.1f} ms"
                for r in runs
            )
        ],
    )


# ---------------------------------------------------------------------- 5. cache hit

CACHE_LATENCY_MS = 200


def cache_hit(stack: BenchStack, sizes: Sizes) -> Row:
    stack.fresh()
    assert stack.sandbox is not None
    hub, client = _web(stack)
    hub.start_worker("flickr_rest", threads=WORKER_THREADS)
    world = stack.world
    stack.sandbox.fault("latency", method=GET_INFO, ms=CACHE_LATENCY_MS)
    params = {"user_id": world["nsid"]}
    first = client.enqueue(GET_INFO, params, wait=10)
    assert first.status_code == 200, first.text[:300]
    direct = direct_flickr(stack.sandbox.url, world)
    stack.sandbox.reset_counters()
    hub_ms, from_cache = [], 0
    for _ in range(sizes.cache_calls):
        started = time.perf_counter()
        answer = client.enqueue(GET_INFO, params, wait=10)
        hub_ms.append((time.perf_counter() - started) * 1000)
        from_cache += bool(answer.json()["data"]["returnvalue"]["from_cache"])
    upstream = stack.sandbox.stats()["by_method"].get(GET_INFO, 0)
    direct_calls = max(10, sizes.cache_calls // 4)
    direct_ms = [timed(lambda: direct.people.getInfo(**params)) for _ in range(direct_calls)]
    stack.sandbox.clear_faults()
    hub.stop()
    hub_p50, direct_p50 = percentile(hub_ms, 50), percentile(direct_ms, 50)
    return Row(
        "cache",
        f"cache hit (`?wait`, {sizes.cache_calls} repeated `{GET_INFO}`)",
        PRODUCTION,
        f"p50 {hub_p50:.1f} ms, p99 {percentile(hub_ms, 99):.1f} ms; {upstream} upstream calls",
        f"p50 {direct_p50:.1f} ms (direct `flickrapi`, sandbox latency {CACHE_LATENCY_MS} ms)",
        f"{share(direct_p50, hub_p50):.1f}× faster",
        targets.CACHE,
        targets.cache(direct_p50, hub_p50, upstream, from_cache, sizes.cache_calls),
        [
            f"{from_cache} of {sizes.cache_calls} answers from the cache; {direct_calls} direct calls",
            f"against a {ADDED_LATENCY_MS} ms upstream the hit would be "
            f"{share(ADDED_LATENCY_MS + 2, hub_p50):.1f}× faster (direct call ≈ latency + 2 ms)",
        ],
    )


# ---------------------------------------------------------------------- 6. coalescing


def coalescing(stack: BenchStack, sizes: Sizes) -> Row:
    stack.fresh()
    assert stack.sandbox is not None
    hub, client = _web(stack)
    hub.start_worker("flickr_rest", threads=WORKER_THREADS)
    other = next(u["nsid"] for u in stack.sandbox.users() if u["nsid"] != stack.world["nsid"])
    # The first call is slow, so the other 99 arrive while it is in flight.
    stack.sandbox.fault("latency", method=GET_INFO, ms=1000, count=1)
    started = time.monotonic()
    statuses = client.enqueue_many([(GET_INFO, {"user_id": other})] * 100)
    wait_until(_done(stack, False, 100), timeout=120, interval=0.2, what="100 identical jobs")
    elapsed = time.monotonic() - started
    calls = stack.sandbox.stats()["by_method"].get(GET_INFO, 0)
    states = stack.jobs_db(False).states()
    stack.sandbox.clear_faults()
    hub.stop()
    return Row(
        "coalescing",
        "coalescing (100 identical reads at once)",
        PRODUCTION,
        f"{calls} upstream call(s); {states.get('completed', 0)} of 100 completed in {elapsed:.1f} s",
        "—",
        "—",
        targets.COALESCING,
        targets.coalescing(calls, states.get("completed", 0), 100, statuses),
        ["the first call was held 1 s in the sandbox, so the others came while it was in flight"],
    )


# ---------------------------------------------------------------------- 7. quota


def quota(stack: BenchStack, sizes: Sizes) -> Row:
    stack.fresh()
    assert stack.sandbox is not None
    window, allowed, seconds = sizes.quota_window, sizes.quota_allowed, sizes.quota_seconds
    # The hub paces at 97% of the key's quota, so its burst allowance and a call a few ms late
    # for its slot still fit in every sliding window (as the integration test does).
    per_hour = int(allowed * 0.97 / window * 3600)
    hub, client = _web(stack, FLICKR_QUOTA_PER_HOUR=str(per_hour), FLICKR_QUOTA_BURST="2")
    hub.start_worker("flickr_rest", threads=WORKER_THREADS, processes=2)
    stack.sandbox.set_quota(allowed, window)
    stack.sandbox.reset_counters()
    rate = 2 * allowed / window
    offered = int(rate * seconds)
    started = time.monotonic()
    statuses = client.enqueue_many(
        ((ECHO, {"bench_id": f"q-{n}"}) for n in range(offered)), concurrency=8, rate=rate
    )
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    stats = stack.sandbox.stats()
    states = stack.jobs_db(False).states()
    hub.stop()
    stack.sandbox.set_quota(None)
    capacity = allowed * seconds / window
    used = stats["ok"] / capacity
    refused = stats["by_status"].get("429", 0)
    failed = states.get("failed", 0)
    return Row(
        "quota",
        f"quota (2× offered for {seconds / 60:g} min; {allowed} calls per {window:g} s window)",
        PRODUCTION,
        f"{used:.1%} of the quota used; {refused} upstream 429s; {failed} jobs failed",
        f"{capacity:.0f} calls allowed in {seconds:g} s",
        f"{stats['ok']} calls made",
        targets.QUOTA,
        targets.quota(used, refused, failed, statuses, offered),
        [
            f"{offered} jobs offered at {rate:g}/s; FLICKR_QUOTA_PER_HOUR={per_hour} (97% of the "
            "sandbox's quota), FLICKR_QUOTA_BURST=2; 2 worker processes × 8 threads",
            f"job states at the end of the offer: {states}",
        ],
    )


# ---------------------------------------------------------------------- 8. backlog & 9. memory


class RssSampler(threading.Thread):
    """The largest RSS seen of the web processes and of the worker processes, every second."""

    def __init__(self, hub: Hub, queue: str = "flickr_rest") -> None:
        super().__init__(daemon=True)
        self.hub, self.queue = hub, queue
        self.web_max = self.worker_max = 0.0
        self._stop_event = threading.Event()

    def sample(self) -> tuple[float, float]:
        web = max((rss_mb(p) for p in self.hub.web_pids()), default=0.0)
        worker = max((rss_mb(p) for p in self.hub.worker_pids(self.queue)), default=0.0)
        return web, worker

    def run(self) -> None:
        while not self._stop_event.wait(1.0):
            web, worker = self.sample()
            self.web_max, self.worker_max = max(self.web_max, web), max(self.worker_max, worker)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def backlog(stack: BenchStack, sizes: Sizes) -> Row:
    stack.fresh()
    assert stack.sandbox is not None
    count = sizes.backlog_jobs
    # Probes made while the upstream is still down each cost their job an attempt.
    overrides = {"JOB_MAX_IN_FLIGHT_PER_CLIENT": str(count * 2), "JOB_RETRY_ATTEMPTS": "20"}
    hub, client = _web(stack, **overrides)
    hub.start_worker("flickr_rest", threads=WORKER_THREADS, processes=2)
    sampler = RssSampler(hub)
    sampler.start()
    # Open the circuit: the upstream answers 503 until released; five failures open it.
    stack.sandbox.fault("http_error", method=ECHO, status=503)
    _enqueue_backlog(stack, client, 5, "open")
    db = stack.jobs_db(False)
    wait_until(lambda: db.states().get("retrying", 0) >= 5, timeout=120, what="the circuit to open")
    started = time.monotonic()
    # Written and published as the API does (`bench.seed`): at the API's pace with the workers
    # busy postponing, 100,000 jobs took about an hour just to queue; how they were queued does
    # not change how they drain.
    stack.seed(count, "backlog", embedded=False, **overrides)
    enqueue_s = time.monotonic() - started
    held = db.states()
    stack.sandbox.clear_faults()
    released = time.monotonic()
    wait_until(_done(stack, False, count + 5), timeout=4 * 3600, interval=2, what="the backlog to drain")
    drain_s = time.monotonic() - released
    sampler.stop()
    stats = stack.sandbox.stats()
    states = db.states()
    hub.stop()
    completed = states.get("completed", 0)
    twice = stats["ids_called_more_than_once"]
    return Row(
        "backlog",
        f"backlog ({count:,} jobs queued while the circuit is open, then released)",
        PRODUCTION,
        f"{completed:,} of {count + 5:,} completed, {twice} called twice; "
        f"RSS max web {sampler.web_max:.0f} MB, worker {sampler.worker_max:.0f} MB",
        "—",
        "—",
        targets.BACKLOG,
        targets.backlog(completed, count + 5, stats["ids"], twice, sampler.web_max, sampler.worker_max),
        [
            f"queued in {enqueue_s:.0f} s ({count / enqueue_s:.0f} jobs/s; rows and confirmed messages "
            "written by `bench.seed`, as the API writes them) with the circuit open; "
            f"drained in {drain_s:.0f} s ({count / drain_s:.0f} jobs/s) after release",
            f"job states when released: {held}",
            "5 more jobs opened the circuit (503 from the sandbox); JOB_RETRY_ATTEMPTS=20 so that "
            "failed probes do not use up a job's attempts; 2 worker processes × 8 threads",
            f"upstream: {stats['ok']} successful calls for {stats['ids']} distinct jobs; "
            f"statuses {stats['by_status']}",
        ],
    )


def memory(stack: BenchStack, sizes: Sizes) -> Row:
    stack.fresh()
    count = sizes.memory_jobs
    hub, client = _web(stack)
    hub.start_worker("flickr_rest", threads=WORKER_THREADS)
    sampler = RssSampler(hub)
    _enqueue_backlog(stack, client, count, "m1")
    wait_until(_done(stack, False, count), timeout=3600, interval=1, what="the first jobs")
    first = sampler.sample()
    _enqueue_backlog(stack, client, count, "m2")
    wait_until(_done(stack, False, 2 * count), timeout=3600, interval=1, what="the second jobs")
    second = sampler.sample()
    hub.stop()
    growth = (second[0] - first[0], second[1] - first[1])
    return Row(
        "memory",
        f"memory (RSS after {count:,} jobs, then after {count:,} more)",
        PRODUCTION,
        f"web {first[0]:.0f} → {second[0]:.0f} MB, worker {first[1]:.0f} → {second[1]:.0f} MB",
        "—",
        f"growth web {growth[0]:+.1f} MB, worker {growth[1]:+.1f} MB",
        f"each ≤ {targets.MEMORY_RSS_MB:g} MB; no growth (≤ {targets.MEMORY_GROWTH_MB:g} MB) over the "
        f"second {count:,}",
        targets.memory(first, second),
        ["largest gunicorn worker and largest Dramatiq worker process (not their masters)"],
    )


ROWS: dict[str, tuple[str, ...]] = {
    "enqueue": (PRODUCTION, EMBEDDED),
    "throughput": (PRODUCTION, EMBEDDED),
    "latency-throughput": (PRODUCTION, EMBEDDED),
    "added-latency": (PRODUCTION, EMBEDDED),
    "cache": (PRODUCTION,),
    "coalescing": (PRODUCTION,),
    "quota": (PRODUCTION,),
    "backlog": (PRODUCTION,),
    "memory": (PRODUCTION,),
    "fairness-flood": (PRODUCTION,),
    "fairness-equal": (PRODUCTION,),
}


def measure(stack: BenchStack, sizes: Sizes, key: str, shape: str) -> Row:
    if key == "enqueue":
        return enqueue_capacity(stack, sizes, shape)
    if key == "throughput":
        return throughput_fast(stack, sizes, shape)
    if key == "latency-throughput":
        return throughput_latency(stack, sizes, shape)
    if key == "added-latency":
        return added_latency(stack, sizes, shape)
    single: dict[str, Callable[[BenchStack, Sizes], Row]] = {
        "cache": cache_hit,
        "coalescing": coalescing,
        "quota": quota,
        "backlog": backlog,
        "memory": memory,
        "fairness-flood": fairness.fairness_flood,
        "fairness-equal": fairness.fairness_equal,
    }
    return single[key](stack, sizes)
