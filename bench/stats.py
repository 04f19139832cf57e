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


def share(figure: float, baseline: float, *, no_baseline: float = 0.0) -> float:
    """figure / baseline, or `no_baseline` when the baseline measured nothing: 0 for a share
    that must be large enough, infinity for one that must stay small, so that the row is missed
    and a run that took half an hour still writes its report instead of dividing by zero."""
    return figure / baseline if baseline > 0 else no_baseline


def paired_ratio(figures: list[float], baselines: list[float], *, no_baseline: float = 0.0) -> float:
    """The median of each run's figure over the same run's baseline. The two are measured side
    by side in every run, so a machine that is slower in one run than in the next weighs on
    both halves of that run's ratio alike; a ratio of the two medians would pair one run's
    figure with another run's baseline."""
    if len(figures) != len(baselines) or not figures:
        raise ValueError(f"{len(figures)} figures and {len(baselines)} baselines do not pair up")
    return median(ratios(figures, baselines, no_baseline=no_baseline))


def ratios(figures: list[float], baselines: list[float], *, no_baseline: float = 0.0) -> list[float]:
    """Each run's figure over its baseline (`share`), as the report lists them."""
    return [share(f, b, no_baseline=no_baseline) for f, b in zip(figures, baselines, strict=True)]


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1 when every client got the same, 1/n when one got everything."""
    if not values or not any(values):
        return 1.0
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))
