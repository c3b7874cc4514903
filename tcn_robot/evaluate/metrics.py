"""Metrics on embeddings; every function takes plain arrays so it can be tested on hand-built cases."""
from __future__ import annotations

import numpy as np
import torch


def _as_tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def alignment_error(embeddings) -> float:
    """Multi-view alignment error of one episode (Sermanet et al. 2017, Sec. V-A).

    ``embeddings`` (V, T, D): for every ordered pair of different views (i, j) and every frame t
    of view i, the nearest neighbour t_nn among the frames of view j; the mean of
    ``|t - t_nn| / T`` over frames and pairs. 0 is perfect alignment.
    """
    e = _as_tensor(embeddings)
    v, t, _ = e.shape
    if v < 2:
        raise ValueError("alignment error needs at least two views")
    idx = torch.arange(t, dtype=torch.float64)
    errs = []
    for i in range(v):
        for j in range(v):
            if i != j:
                nn_idx = torch.cdist(e[i], e[j]).argmin(1).double()
                errs.append((idx - nn_idx).abs().mean() / t)
    return float(torch.stack(errs).mean())


def mean_alignment_error(episodes: list) -> float:
    """Mean of ``alignment_error`` over episodes, each (V, T, D)."""
    return float(np.mean([alignment_error(e) for e in episodes]))
