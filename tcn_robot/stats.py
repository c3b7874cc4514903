"""Statistics over seeds as deep-RL research reports them (rliable; Agarwal et al. 2021, "Deep RL at the
Edge of the Statistical Precipice"): the interquartile mean of the runs' scores and its 95% stratified
bootstrap confidence interval.

``iqm`` is rliable's ``metrics.aggregate_iqm`` (``scipy.stats.trim_mean(scores, 0.25)`` over every run
of every task); ``bootstrap_ci`` its ``library.get_interval_estimates`` with the percentile method: each
replicate resamples, with replacement, the runs of every task separately (the strata), and the interval
is the 2.5th and 97.5th percentile of the statistic over the replicates.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def iqm(scores) -> float:
    """Interquartile mean of every score (runs x tasks, any shape): the mean after dropping the lowest
    and the highest ``floor(n / 4)`` of the n scores."""
    x = np.sort(np.ravel(np.asarray(scores, dtype=np.float64)))
    cut = int(0.25 * len(x))
    return float(x[cut : len(x) - cut].mean())


def bootstrap_ci(scores, statistic: Callable = iqm, reps: int = 50_000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """The percentile interval of ``statistic`` over ``reps`` stratified bootstrap replicates of
    ``scores`` (runs, tasks) (a 1-D array is one task)."""
    x = np.asarray(scores, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    runs, tasks = x.shape
    rng = np.random.default_rng(seed)
    values = np.empty(reps)
    for start in range(0, reps, 1000):  # replicates in blocks: (block, runs, tasks) at a time
        n = min(1000, reps - start)
        pick = rng.integers(0, runs, size=(n, runs, tasks))
        sample = np.take_along_axis(np.broadcast_to(x, (n, runs, tasks)), pick, axis=1)
        values[start : start + n] = [statistic(s) for s in sample]
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def summary(scores, reps: int = 50_000, seed: int = 0) -> dict:
    """What a results table reports of one recipe's final scores over seeds: the interquartile mean,
    its 95% bootstrap interval, the mean, the worst seed and every score."""
    x = np.asarray(scores, dtype=np.float64)
    low, high = bootstrap_ci(x, reps=reps, seed=seed)
    return {"iqm": iqm(x), "ci95": [low, high], "mean": float(x.mean()), "worst": float(x.min()), "runs": int(x.size),
            "scores": [float(v) for v in np.ravel(x)]}
