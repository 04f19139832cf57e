"""Issue 9's targets: the rule that marks each benchmark row met or missed in bench/RESULTS.md.

The rules are pure functions of what a row measured, apart from the runs that measure it, so
that their arithmetic is tested (bench/tests/test_targets.py) instead of trusted. Each rule
also refuses to call a row met when the run itself went wrong (an error answer, a job that did
not complete, a baseline that measured nothing): a figure from a broken run is not a result.
"""

from __future__ import annotations

from bench.stats import share

ENQUEUE = "≥ 60% of req/s; p99 ≤ 1.5×"
THROUGHPUT = "≥ 60%"
LATENCY_THROUGHPUT = "≥ 90% of the bound; ≥ 200 calls in flight"
ADDED_LATENCY = "p50 overhead ≤ 10 ms, p99 ≤ 30 ms"
CACHE = "≥ 10× faster; 0 upstream calls"
COALESCING = "1 upstream call"
QUOTA = "0 upstream 429s, ≥ 95% used, no job failed"
BACKLOG = "all complete exactly once; web and worker RSS < 200 MB"
MEMORY_RSS_MB, MEMORY_GROWTH_MB = 150.0, 5.0
FAIRNESS_FLOOD = "light p95 < 5 s; ≥ 95% of the quota used; 0 upstream 429s"
FAIRNESS_EQUAL = "Jain ≥ 0.95 every minute; ≥ 95% of the quota used; 0 upstream 429s"


def enqueue(rps_ratio: float, p99_ratio: float, errors: int) -> bool:
    """≥ 60% of the baseline's requests per second, p99 ≤ 1.5× the baseline's (each the median
    of the runs' own ratios), every answer 2xx."""
    return rps_ratio >= 0.6 and p99_ratio <= 1.5 and errors == 0


def throughput(ratio: float, problems: list[str]) -> bool:
    """≥ 60% of the bare Dramatiq actor's jobs per second (the median of the runs' own ratios),
    and every job completed."""
    return ratio >= 0.6 and not problems


def latency_throughput(rate: float, bound: float, in_flight: int, problems: list[str]) -> bool:
    """≥ 90% of threads × 1/latency, with ≥ 200 calls in flight at once, and every job completed."""
    return share(rate, bound) >= 0.9 and in_flight >= 200 and not problems


def added_latency(over_p50_ms: float, over_p99_ms: float) -> bool:
    """The hub's p50 at most 10 ms over the direct call's, its p99 at most 30 ms over."""
    return over_p50_ms <= 10 and over_p99_ms <= 30


def cache(direct_p50_ms: float, hub_p50_ms: float, upstream: int, from_cache: int, calls: int) -> bool:
    """A hit ≥ 10× faster than the direct call, no upstream call, and every answer from the cache."""
    return share(direct_p50_ms, hub_p50_ms) >= 10 and upstream == 0 and from_cache == calls


def coalescing(calls: int, completed: int, jobs: int, statuses: dict[int, int]) -> bool:
    """One upstream call for the identical reads, all of them accepted and completed."""
    return calls == 1 and completed == jobs and statuses == {202: jobs}


def quota(used: float, refused: int, failed: int, statuses: dict[int, int], offered: int) -> bool:
    """No upstream 429, ≥ 95% of the quota used, no job failed, every job offered accepted."""
    return refused == 0 and used >= 0.95 and failed == 0 and statuses == {202: offered}


def backlog(
    completed: int, jobs: int, distinct_called: int, called_twice: int, web_mb: float, worker_mb: float
) -> bool:
    """Every job completed, each called upstream exactly once, RSS under 200 MB throughout."""
    once = completed == jobs and distinct_called == jobs and called_twice == 0
    return once and web_mb < 200 and worker_mb < 200


def memory(first_mb: tuple[float, float], second_mb: tuple[float, float]) -> bool:
    """Web and worker each ≤ 150 MB after the second batch, neither grown by more than 5 MB
    over it (a few MB is the allocator's noise, not a leak)."""
    growth = max(second - first for first, second in zip(first_mb, second_mb, strict=True))
    return max(second_mb) <= MEMORY_RSS_MB and growth <= MEMORY_GROWTH_MB


def fairness_flood(light_p95_s: float, light_jobs: int, used: float, refused: int) -> bool:
    """The light clients' p95 wait under 5 s beside a flood (and light jobs there were to wait),
    ≥ 95% of the quota used, no 429."""
    return light_jobs > 0 and light_p95_s < 5 and used >= 0.95 and refused == 0


def fairness_equal(min_jain: float, used: float, refused: int) -> bool:
    """Jain's index ≥ 0.95 in every minute, ≥ 95% of the quota used, no 429."""
    return min_jain >= 0.95 and used >= 0.95 and refused == 0
