"""FlickrHub's benchmarks: `make bench` (`python -m bench.run`), results in bench/RESULTS.md.

Also a small Django app, installed only when BENCH_ENDPOINTS=1: the baseline view the enqueue
benchmark is compared with (one DRF view, one INSERT). Never enabled in a deployment.
"""
