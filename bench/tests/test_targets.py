"""The rules that mark a benchmark row met or missed, and the statistics they rest on: a slip in
either would print "met" in bench/RESULTS.md for a target that was not."""

from __future__ import annotations

import pytest

from bench import targets
from bench.stats import jain, median, paired_ratio, percentile, ratios, share


class TestPercentile:
    def test_nearest_rank_takes_the_smallest_value_with_q_percent_at_or_below_it(self):
        values = [float(v) for v in range(1, 11)]  # 1 … 10
        assert percentile(values, 30) == 3.0
        assert percentile(values, 50) == 5.0
        assert percentile(values, 55) == 6.0
        assert percentile(values, 90) == 9.0
        assert percentile(values, 99) == 10.0

    def test_the_order_the_values_came_in_does_not_matter(self):
        assert percentile([5.0, 1.0, 4.0, 2.0, 3.0], 50) == 3.0

    def test_the_ends_are_the_smallest_and_the_largest(self):
        values = [7.0, 3.0, 9.0]
        assert percentile(values, 0) == 3.0
        assert percentile(values, 100) == 9.0

    def test_p99_of_two_hundred_calls_is_the_198th(self):
        values = [float(v) for v in range(200)]
        assert percentile(values, 99) == 197.0

    def test_no_values_is_an_error_not_a_figure(self):
        with pytest.raises(ValueError):
            percentile([], 50)


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    assert median([1.0, 10.0, 2.0, 4.0]) == 3.0


class TestShare:
    def test_the_figure_over_its_baseline(self):
        assert share(300, 600) == 0.5

    def test_a_baseline_that_measured_nothing_gives_zero_instead_of_dividing_by_it(self):
        assert share(300, 0) == 0.0


class TestJain:
    def test_equal_shares_are_perfectly_fair(self):
        assert jain([5.0, 5.0, 5.0, 5.0]) == pytest.approx(1.0)

    def test_one_client_taking_everything_is_one_over_n(self):
        assert jain([12.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)

    def test_a_skewed_minute_falls_below_the_target(self):
        assert jain([40.0, 20.0, 20.0, 20.0]) < 0.95 < jain([26.0, 25.0, 25.0, 24.0])


class TestPairedRatio:
    def test_each_run_is_compared_with_its_own_baseline(self):
        # Run 2 was slow for both; a ratio of the medians (200 / 400 = 50%) would pair run 3's
        # figure with run 1's baseline.
        hub, baseline = [300.0, 100.0, 200.0], [400.0, 150.0, 500.0]
        assert paired_ratio(hub, baseline) == pytest.approx(2 / 3)
        assert ratios(hub, baseline) == pytest.approx([0.75, 2 / 3, 0.4])

    def test_a_run_whose_baseline_measured_nothing_counts_as_the_given_worst_case(self):
        assert paired_ratio([10.0], [0.0]) == 0.0
        assert paired_ratio([10.0], [0.0], no_baseline=float("inf")) == float("inf")

    def test_figures_and_baselines_that_do_not_pair_up_are_an_error(self):
        with pytest.raises(ValueError):
            paired_ratio([1.0, 2.0], [1.0])
        with pytest.raises(ValueError):
            paired_ratio([], [])


class TestEnqueue:
    def test_met_at_sixty_percent_and_one_and_a_half_times_the_p99(self):
        assert targets.enqueue(0.6, 1.5, errors=0)

    def test_missed_just_under_sixty_percent(self):
        assert not targets.enqueue(0.599, 1.0, errors=0)

    def test_missed_when_the_p99_is_too_long_whatever_the_rate(self):
        assert not targets.enqueue(2.0, 1.51, errors=0)

    def test_missed_when_any_answer_was_an_error(self):
        assert not targets.enqueue(0.9, 1.0, errors=1)

    def test_a_run_whose_baseline_answered_nothing_misses_it(self):
        p99 = paired_ratio([10.0, 10.0, 10.0], [10.0, 0.0, 0.0], no_baseline=float("inf"))
        assert not targets.enqueue(paired_ratio([900.0] * 3, [1000.0, 0.0, 0.0]), p99, errors=0)


class TestThroughput:
    def test_fast_upstream_met_at_sixty_percent_of_the_bare_actor(self):
        assert targets.throughput(0.6, problems=[])
        assert not targets.throughput(0.599, problems=[])

    def test_a_job_that_did_not_complete_misses_the_row_whatever_the_rate(self):
        assert not targets.throughput(1.0, problems=["run 1: job states {'failed': 1}"])

    def test_real_latency_needs_ninety_percent_of_the_bound_and_two_hundred_in_flight(self):
        assert targets.latency_throughput(900.0, 1000.0, in_flight=200, problems=[])
        assert not targets.latency_throughput(899.0, 1000.0, in_flight=200, problems=[])
        assert not targets.latency_throughput(1000.0, 1000.0, in_flight=199, problems=[])
        assert not targets.latency_throughput(1000.0, 1000.0, in_flight=200, problems=["lost"])


def test_added_latency_allows_ten_ms_at_p50_and_thirty_at_p99():
    assert targets.added_latency(10.0, 30.0)
    assert not targets.added_latency(10.1, 5.0)
    assert not targets.added_latency(2.0, 30.1)


class TestCache:
    def test_met_ten_times_faster_with_every_answer_from_the_cache(self):
        assert targets.cache(direct_p50_ms=200.0, hub_p50_ms=20.0, upstream=0, from_cache=50, calls=50)

    def test_one_upstream_call_misses_it_however_fast(self):
        assert not targets.cache(200.0, 2.0, upstream=1, from_cache=50, calls=50)

    def test_an_answer_not_from_the_cache_misses_it(self):
        assert not targets.cache(200.0, 2.0, upstream=0, from_cache=49, calls=50)

    def test_under_ten_times_misses_it(self):
        assert not targets.cache(200.0, 20.1, upstream=0, from_cache=50, calls=50)


def test_coalescing_needs_one_call_and_every_job_accepted_and_completed():
    assert targets.coalescing(1, completed=100, jobs=100, statuses={202: 100})
    assert not targets.coalescing(2, completed=100, jobs=100, statuses={202: 100})
    assert not targets.coalescing(1, completed=99, jobs=100, statuses={202: 100})
    assert not targets.coalescing(1, completed=99, jobs=100, statuses={202: 99, 503: 1})


def test_quota_needs_no_429_ninety_five_percent_used_and_nothing_failed_or_refused():
    assert targets.quota(0.95, refused=0, failed=0, statuses={202: 10}, offered=10)
    assert not targets.quota(0.949, refused=0, failed=0, statuses={202: 10}, offered=10)
    assert not targets.quota(0.99, refused=1, failed=0, statuses={202: 10}, offered=10)
    assert not targets.quota(0.99, refused=0, failed=1, statuses={202: 10}, offered=10)
    assert not targets.quota(0.99, refused=0, failed=0, statuses={202: 9, 429: 1}, offered=10)


class TestBacklog:
    def test_met_when_every_job_completed_once_under_two_hundred_mb(self):
        assert targets.backlog(100, 100, distinct_called=100, called_twice=0, web_mb=120, worker_mb=199.9)

    def test_a_job_called_twice_misses_it(self):
        assert not targets.backlog(100, 100, distinct_called=100, called_twice=1, web_mb=120, worker_mb=120)

    def test_a_job_never_called_misses_it_even_if_the_counts_of_completed_match(self):
        assert not targets.backlog(100, 100, distinct_called=99, called_twice=0, web_mb=120, worker_mb=120)

    def test_either_process_reaching_two_hundred_mb_misses_it(self):
        assert not targets.backlog(100, 100, distinct_called=100, called_twice=0, web_mb=200, worker_mb=120)


class TestMemory:
    def test_met_at_or_under_150_mb_with_a_few_mb_of_noise(self):
        assert targets.memory(first_mb=(90.0, 145.0), second_mb=(94.0, 150.0))

    def test_growth_over_five_mb_in_either_process_is_a_leak(self):
        assert not targets.memory(first_mb=(90.0, 100.0), second_mb=(95.1, 100.0))
        assert not targets.memory(first_mb=(90.0, 100.0), second_mb=(90.0, 105.1))

    def test_over_150_mb_misses_it_even_without_growth(self):
        assert not targets.memory(first_mb=(151.0, 100.0), second_mb=(151.0, 100.0))


class TestFairness:
    def test_flood_met_with_light_jobs_waiting_under_five_seconds(self):
        assert targets.fairness_flood(4.9, light_jobs=110, used=0.96, refused=0)
        assert not targets.fairness_flood(5.0, light_jobs=110, used=0.96, refused=0)

    def test_flood_with_no_light_job_measured_is_not_a_result(self):
        assert not targets.fairness_flood(0.0, light_jobs=0, used=0.96, refused=0)

    def test_equal_demand_needs_jain_over_point_95_every_minute(self):
        assert targets.fairness_equal(0.95, used=0.95, refused=0)
        assert not targets.fairness_equal(0.949, used=0.99, refused=0)
        assert not targets.fairness_equal(0.99, used=0.99, refused=3)
