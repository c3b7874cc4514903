"""Metrics on embeddings; every function takes plain arrays so it can be tested on hand-built cases."""
from __future__ import annotations

from itertools import combinations

import numpy as np
import torch


def _as_tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float64)


def alignment_error(embeddings) -> float:
    """Multi-view alignment error of one episode (Sermanet et al. 2017, Sec. V-A).

    ``embeddings`` (V, T, D): for every ordered pair of different views (i, j) and every frame t
    of view i, the nearest neighbour t_nn among the frames of view j; the mean of
    ``|t - t_nn| / T`` over frames and pairs. 0 is perfect alignment.
    """
    return float(np.mean(view_alignment_errors(embeddings)))


def view_alignment_errors(embeddings) -> list[float]:
    """``alignment_error`` by camera: for each view i of ``embeddings`` (V, T, D), the mean of ``|t - t_nn| / T``
    over its frames t and every other view j (t_nn: the nearest frame of view j). Their mean is ``alignment_error``;
    apart, they say which camera of a rig the embedding fails on."""
    e = _as_tensor(embeddings)
    v, t, _ = e.shape
    if v < 2:
        raise ValueError("alignment error needs at least two views")
    idx = torch.arange(t, dtype=torch.float64)
    return [float(torch.stack([(idx - torch.cdist(e[i], e[j]).argmin(1).double()).abs().mean() / t
                               for j in range(v) if j != i]).mean()) for i in range(v)]


def embodiment_alignment_error(embeddings, view_embodiments: list[str]) -> float | None:
    """Alignment error between the human-proxy and the robot views of one paired (twin) episode.

    ``embeddings`` (V, T, D) with ``view_embodiments`` naming each view's embodiment: the k-th human
    view and the k-th robot view are one camera filming both embodiments at the same instants, so this
    is ``alignment_error`` across embodiments, the gap a reward against a human video must bridge.
    The mean over cameras; None when the episode lacks either embodiment.
    """
    human = [v for v, e in enumerate(view_embodiments) if e == "human"]
    robot = [v for v, e in enumerate(view_embodiments) if e == "robot"]
    if not human or not robot:
        return None
    e = np.asarray(embeddings)
    return float(np.mean([alignment_error(e[[h, r]]) for h, r in zip(human, robot)]))


def mean_alignment_error(episodes: list) -> float:
    """Mean of ``alignment_error`` over episodes, each (V, T, D)."""
    return float(np.mean([alignment_error(e) for e in episodes]))


def nearest_indices(query, reference) -> np.ndarray:
    """For each row of ``query`` (N, D), the index of its nearest row of ``reference`` (M, D)."""
    return torch.cdist(_as_tensor(query), _as_tensor(reference)).argmin(1).numpy()


def kendall_tau(x, y) -> float:
    """Kendall's tau-b between two sequences (ties handled); 0 when either is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(len(x), 1)
    s, tx, ty = (dx * dy)[iu].sum(), (dx[iu] != 0).sum(), (dy[iu] != 0).sum()
    return float(s / np.sqrt(tx * ty)) if tx and ty else 0.0


def spearman(x, y) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 when either is constant."""
    def ranks(v):
        v = np.asarray(v, float)
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        for u in np.unique(v):  # average ranks of ties
            m = v == u
            r[m] = r[m].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def alignment_tau(u, v) -> float:
    """XIRL's Kendall's tau between two sequences' embeddings u (T1, D), v (T2, D): tau between
    the frame index of u and the index of its nearest neighbour in v (1 when time is preserved)."""
    return kendall_tau(np.arange(len(u)), nearest_indices(u, v))


def cycle_consistency(u, v) -> float:
    """Fraction of frames i of u that come back to themselves via u -> nearest in v -> nearest in u."""
    j = nearest_indices(u, v)
    k = nearest_indices(_as_tensor(v)[j], u)
    return float(np.mean(k == np.arange(len(u))))


def classification_error(query_emb, query_labels, query_seq, ref_emb, ref_labels, ref_seq) -> dict:
    """The TCN paper's attribute classification error, by 1-nearest-neighbour retrieval.

    Each query frame takes the labels of its nearest reference frame from a *different* sequence
    (``*_seq`` ids). Per attribute: recall of every class present among the queries (hits / count;
    a class that is never retrieved correctly counts as recall 0, unlike the official code, which
    skipped it), averaged over classes; the error is 1 - that mean. Labels are (N, A) integers.
    Returns ``{"per_attribute": [A errors], "mean": float}``.
    """
    q, r = _as_tensor(query_emb), _as_tensor(ref_emb)
    d = torch.cdist(q, r)
    d[torch.as_tensor(np.asarray(query_seq))[:, None] == torch.as_tensor(np.asarray(ref_seq))[None, :]] = float("inf")
    nn_idx = d.argmin(1).numpy()
    pred = np.asarray(ref_labels)[nn_idx]
    truth = np.asarray(query_labels)
    errors = []
    for a in range(truth.shape[1]):
        recalls = [np.mean(pred[truth[:, a] == c, a] == c) for c in np.unique(truth[:, a])]
        errors.append(1.0 - float(np.mean(recalls)))
    return {"per_attribute": errors, "mean": float(np.mean(errors))}


def linear_probe_error(train_emb, train_labels, test_emb, test_labels, steps: int = 300, seed: int = 0) -> dict:
    """A multinomial logistic regression per attribute on frozen embeddings (full-batch Adam,
    standardized features); error = 1 - balanced accuracy on the test frames, as above."""
    g = torch.Generator().manual_seed(seed)
    xtr, xte = _as_tensor(train_emb).float(), _as_tensor(test_emb).float()
    mu, sd = xtr.mean(0), xtr.std(0).clamp_min(1e-6)
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    ytr_all, yte_all = np.asarray(train_labels), np.asarray(test_labels)
    errors = []
    for a in range(ytr_all.shape[1]):
        classes = np.unique(np.concatenate([ytr_all[:, a], yte_all[:, a]]))
        ytr = torch.as_tensor(np.searchsorted(classes, ytr_all[:, a]))
        w = torch.zeros(xtr.shape[1], len(classes)).normal_(0, 0.01, generator=g).requires_grad_()
        b = torch.zeros(len(classes), requires_grad=True)
        opt = torch.optim.Adam([w, b], lr=0.05)
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(xtr @ w + b, ytr).backward()
            opt.step()
        pred = classes[(xte @ w + b).argmax(1).numpy()]
        truth = yte_all[:, a]
        errors.append(1.0 - float(np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)])))
    return {"per_attribute": errors, "mean": float(np.mean(errors))}


def dtw_distance(u, v) -> float:
    """Dynamic time warping (Sakoe & Chiba 1978) between the embedding sequences ``u`` (T, D) and
    ``v`` (S, D): the least sum of Euclidean frame distances along a monotone path from the first
    frames to the last ones, over T + S (so that sequences of other lengths compare)."""
    cost = torch.cdist(_as_tensor(u), _as_tensor(v)).numpy().astype(np.float64)
    t, s = cost.shape
    acc = np.full((t + 1, s + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, t + 1):
        row, prev = acc[i], acc[i - 1]
        best = np.minimum(prev[1:], prev[:-1])  # from above or diagonally, per column
        for j in range(1, s + 1):
            row[j] = cost[i - 1, j - 1] + min(best[j - 1], row[j - 1])
    return float(acc[t, s] / (t + s))


def behaviour_retrieval(sequences: list, behaviours: list[str], classes: list[str], places: list | None = None) -> dict:
    """Leave-one-out nearest neighbour by ``dtw_distance`` over episode embeddings ``sequences``
    (each (T, D)): for each episode, the behaviour of its nearest other episode. Returns the
    confusion matrix (rows: the episode's behaviour, columns: its neighbour's, in ``classes``
    order), the accuracy and the number of episodes; given each episode's place of pouring
    ``places`` (e.g. the side of the scene), also ``same_place``: the share of episodes whose
    neighbour poured at the same place, the confound where places are drawn apart from behaviours."""
    n = len(sequences)
    d = np.full((n, n), np.inf)
    for i, j in combinations(range(n), 2):
        d[i, j] = d[j, i] = dtw_distance(sequences[i], sequences[j])
    nearest = d.argmin(1)
    confusion = np.zeros((len(classes), len(classes)), int)
    for i in range(n):
        confusion[classes.index(behaviours[i]), classes.index(behaviours[int(nearest[i])])] += 1
    out = {"classes": list(classes), "confusion": confusion.tolist(), "accuracy": float(np.trace(confusion) / max(n, 1)),
           "episodes": n}
    if places is not None:
        out["same_place"] = float(np.mean([places[i] == places[int(nearest[i])] for i in range(n)]))
    return out
