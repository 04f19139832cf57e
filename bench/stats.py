"""The few statistics the benchmark rows report: nearest-rank percentiles, medians, ratios
against a baseline and Jain's fairness index (tested in bench/tests/test_targets.py)."""

from __future__ import annotations

import math
import statistics


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) by nearest rank: the smallest value with at least q% of the
    values at or below it."""
    if not values:
        raise ValueError("a percentile of no values")
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[min(len(ordered), max(1, rank)) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def share(figure: float, baseline: float) -> float:
    """figure / baseline, or 0 when the baseline measured nothing: the row is then missed, and a
    run that took half an hour still writes its report instead of dividing by zero."""
    return figure / baseline if baseline > 0 else 0.0


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1 when every client got the same, 1/n when one got everything."""
    if not values or not any(values):
        return 1.0
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))
