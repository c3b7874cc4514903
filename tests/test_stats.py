"""Seed statistics against naive references: rliable's interquartile mean and stratified bootstrap."""
import itertools

import numpy as np
import pytest

from tcn_robot.stats import bootstrap_ci, iqm, summary


@pytest.mark.parametrize("n", [1, 3, 4, 5, 8, 10, 13])
def test_iqm_is_the_mean_of_the_middle_half_by_trimming_a_quarter_each_end(n):
    x = np.random.default_rng(n).normal(size=n)
    ordered = sorted(x)
    k = int(0.25 * n)  # scipy.stats.trim_mean's cut: int(proportion * n) from each end
    assert iqm(x) == pytest.approx(sum(ordered[k : n - k]) / (n - 2 * k))
    assert iqm(x.reshape(n, 1)) == iqm(x)


def test_the_bootstrap_interval_matches_the_exact_resampling_distribution():
    """Five seeds: every one of the 5^5 equally likely resamples, enumerated; the bootstrap's
    percentiles converge to those of that exact distribution."""
    x = np.array([0.1, 0.5, 0.9, 0.95, 1.0])
    exact = np.array([iqm(x[list(p)]) for p in itertools.product(range(5), repeat=5)])
    low, high = bootstrap_ci(x, reps=40_000, seed=1)
    assert low == pytest.approx(np.percentile(exact, 2.5), abs=0.02)
    assert high == pytest.approx(np.percentile(exact, 97.5), abs=0.02)


def test_strata_are_resampled_separately():
    """Two tasks whose scores never mix: a replicate keeps each task's own runs, so the mean over both
    stays within the range the tasks allow together."""
    x = np.stack([np.zeros(6), np.ones(6) + np.arange(6) / 10], 1)  # task 0 all 0, task 1 in [1, 1.5]
    low, high = bootstrap_ci(x, statistic=np.mean, reps=5000)
    assert 0.5 <= low <= high <= 0.75


def test_summary_reports_the_worst_seed_and_every_score():
    s = summary([0.9, 0.1, 0.8, 0.7, 1.0], reps=2000)
    assert s["worst"] == 0.1 and s["runs"] == 5 and s["ci95"][0] <= s["iqm"] <= s["ci95"][1]
    assert s["iqm"] == pytest.approx((0.7 + 0.8 + 0.9) / 3)
