"""`make bench` — FlickrHub's benchmarks (issue 9), each figure against a baseline measured in the
same run, written to bench/RESULTS.md.

    python -m bench.run                 # every row, medians of 3 runs where asked (about an hour)
    python -m bench.run --quick         # a short smoke run of every row (a few minutes)
    python -m bench.run --only enqueue --only cache
    python -m bench.run --shape production   # skip the embedded default's rows

The run makes its own RabbitMQ vhost, PostgreSQL database and Redis key prefix, starts the
sandbox Flickr in its own process and the hub in the production shape (gunicorn, `rundramatiq`,
RabbitMQ, Redis, PostgreSQL) and, for the first four rows, in the embedded default (one
`manage.py serve` process on SQLite) — and removes all of it at the end, pass or fail.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.rows import ROWS, Row, Sizes, measure
from bench.stack import BenchStack

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    """The machine, with its load average now: called once when the run starts (the results are
    rewritten after every row, and the load by then is the benchmark's own)."""
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({model or platform.machine()}), {mem_kb / 1024 / 1024:.1f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        f"load average at the start {load}"
    )


def render(
    rows: list[Row],
    *,
    command: str,
    started: datetime,
    seconds: float,
    sizes: Sizes,
    note: str,
    machine_at_start: str,
) -> str:
    mark = {True: "met", False: "**missed**", None: "—"}
    lines = [
        "# FlickrHub benchmark results",
        "",
        f"- **Date**: {started:%Y-%m-%d %H:%M} UTC ({seconds / 60:.0f} min)",
        f"- **Machine**: {machine_at_start}",
        f"- **Command**: `{command}`" + (" (quick smoke run: small sizes, one run)" if sizes.quick else ""),
        "- **Shapes**: *production* = gunicorn (2 processes × 4 threads), `rundramatiq` pools, RabbitMQ "
        "(publisher confirms), Redis, PostgreSQL, all on this machine; *embedded* = one `manage.py serve` "
        "process (waitress, in-memory broker, in-process workers, SQLite). The upstream is the sandbox "
        "Flickr in its own process.",
        f"- **Runs**: medians of {sizes.runs} runs for `enqueue` and `added-latency`, of "
        f"{sizes.throughput_runs} for the two throughput rows (alternating which of figure and baseline "
        "goes first), their ratios the median of each run's own ratio to the baseline measured beside it; "
        "one run for the others.",
    ]
    if note:
        lines.append(f"- **Note**: {note}")
    lines += [
        "",
        "| figure | shape | measured | baseline (same run) | ratio | target | |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.title} | {row.shape} | {row.figure} | {row.baseline} | {row.ratio} | {row.target} "
            f"| {mark[row.met]} |"
        )
    lines += ["", "## Details", ""]
    for row in rows:
        lines.append(f"- **{row.title}**, {row.shape}:")
        lines += [f"  - {n}" for n in row.notes]
    lines += [
        "",
        "Rows: `enqueue` (wrk, 32 connections, POST /api/v1/flickr/rest vs the bench-only DRF view with "
        "one INSERT), `throughput` (fast upstream, vs a bare Dramatiq actor making the same signed call), "
        "`latency-throughput` (200 ms upstream, vs threads × 1/latency), `added-latency` (`?wait` vs direct "
        "`flickrapi`), `cache`, `coalescing`, `quota`, `backlog`, `memory`, `fairness-flood` and "
        "`fairness-equal` (fair queueing vs first in, first out).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="FlickrHub's benchmarks (issue 9).")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run: a smoke test")
    parser.add_argument("--only", action="append", choices=list(ROWS), help="run only this row (repeatable)")
    parser.add_argument("--shape", choices=("production", "embedded"), help="only this shape")
    parser.add_argument("--runs", type=int, help="runs per row for the medians (default 3, quick 1)")
    parser.add_argument(
        "--throughput-runs", type=int, help="runs of the two throughput rows (default: --runs)"
    )
    parser.add_argument("--backlog-jobs", type=int, help="jobs in the backlog row (default 100,000)")
    parser.add_argument("--memory-jobs", type=int, help="jobs per half of the memory row (default 10,000)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where to write (default {RESULTS})")
    parser.add_argument(
        "--note", default="", help="a line for the results, e.g. what else ran on the machine"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the hub's and the sandbox's logs")
    args = parser.parse_args(argv)
    sizes = Sizes.of(
        args.quick,
        args.runs,
        throughput_runs=args.throughput_runs,
        backlog_jobs=args.backlog_jobs,
        memory_jobs=args.memory_jobs,
    )
    command = "python -m bench.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    started, clock, at_start = datetime.now(UTC), time.monotonic(), machine()
    rows: list[Row] = []
    try:
        with BenchStack(keep_logs=args.keep_logs) as stack:
            for key, shapes in ROWS.items():
                if args.only and key not in args.only:
                    continue
                for shape in shapes:
                    if args.shape and shape != args.shape:
                        continue
                    print(f"bench: {key} ({shape})…", flush=True)
                    row = measure(stack, sizes, key, shape)
                    rows.append(row)
                    print(f"  {row.figure} | baseline {row.baseline} | {row.ratio} | {row.met}", flush=True)
                    # after every row, so an interrupted run still leaves what it measured
                    write(rows, command, started, clock, at_start, sizes, args)
    finally:
        if rows:
            write(rows, command, started, clock, at_start, sizes, args)
            print(f"bench: results in {args.out}")
    # Missed targets are results, not errors: the exit status says only that the run completed.
    return 0


def write(
    rows: list[Row],
    command: str,
    started: datetime,
    clock: float,
    machine_at_start: str,
    sizes: Sizes,
    args: argparse.Namespace,
) -> None:
    text = render(
        rows,
        command=command.strip(),
        started=started,
        seconds=time.monotonic() - clock,
        sizes=sizes,
        note=args.note,
        machine_at_start=machine_at_start,
    )
    args.out.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
