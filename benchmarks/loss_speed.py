"""Time per loss call (forward + backward) of tcn_robot.losses against straightforward versions.

    python benchmarks/loss_speed.py

The straightforward versions are what one writes first (and what TF's contrib losses do): the
semi-hard and all-triplet losses over an (N, N, N) broadcast of anchor, positive and negative,
the lifted loss over TF's tiled (N^2, N) layout. Best of 7 calls. N is the number of embeddings (pairs of
B/2 labels); they are skipped where the cube would not fit in a few GB.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from tcn_robot.losses import LiftedStructuredLoss, NPairsLoss, TripletLoss, InfoNCELoss, pairwise_distances


def naive_semihard(x, y, margin=0.2):
    d = pairwise_distances(x, True)
    same = y[:, None] == y[None, :]
    pos = same & ~torch.eye(len(y), dtype=torch.bool)
    neg = ~same
    outside = neg[:, None, :] & (d[:, None, :] > d[:, :, None])  # (i, j, k)
    big = d.max().detach() + 1
    closest = torch.where(outside, d[:, None, :], big).amin(2)
    farthest = torch.where(neg, d, -big).amax(1, keepdim=True).expand_as(closest)
    dan = torch.where(outside.any(2), closest, farthest)
    return F.relu(margin + d - dan)[pos].mean()


def naive_all(x, y, margin=0.2):
    d = pairwise_distances(x, True)
    same = y[:, None] == y[None, :]
    valid = (same & ~torch.eye(len(y), dtype=torch.bool))[:, :, None] & (~same)[:, None, :]
    loss = F.relu(margin + d[:, :, None] - d[:, None, :])
    return loss[valid].mean()


def naive_lifted(x, y, margin=1.0):
    """TF's lifted_struct_loss layout: the (N, N) distances tiled to (N^2, N)."""
    d = pairwise_distances(x, False)
    n = len(y)
    same = y[:, None] == y[None, :]
    neg = (~same).float()
    diff = margin - d
    row_min = diff.amin(1, keepdim=True)
    row_neg_max = ((diff - row_min) * neg).amax(1, keepdim=True) + row_min
    max_elements = torch.maximum(row_neg_max, row_neg_max.T)
    left = (torch.exp(diff.repeat(n, 1) - max_elements.T.reshape(-1, 1)) * neg.repeat(n, 1)).sum(1).view(n, n)
    j = max_elements + torch.log(left + left.T) + d
    pos = (same & ~torch.eye(n, dtype=torch.bool)).float()
    return 0.25 * (F.relu(j * pos) ** 2).sum() / (pos.sum() / 2)


def timed(fn, *args, repeat=7) -> float:
    """Best of ``repeat`` calls (ms): the least disturbed by other load."""
    fn(*args).backward()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args).backward()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-cube", type=float, default=2.0e8, help="largest N^3 the straightforward versions may build")
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    print(f"# CPU, {torch.get_num_threads()} threads, float32, forward + backward, ms per call")
    print("| loss | N | D | tcn_robot | straightforward | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    pairs = [("triplet semi-hard", TripletLoss(0.2, "semihard", gather=False), naive_semihard),
             ("triplet all", TripletLoss(0.2, "all", gather=False), naive_all),
             ("lifted", LiftedStructuredLoss(1.0, gather=False), naive_lifted)]
    for n in (32, 128, 512, 1024):
        for dim in (32, 128):
            x = F.normalize(torch.randn(n, dim), dim=1).requires_grad_()
            y = torch.arange(n) // 2
            for name, ours, naive in pairs:
                t_ours = timed(ours, x, y)
                t_naive = timed(naive, x, y) if n**3 <= args.max_cube else None
                ratio = f"{t_naive / t_ours:.1f}x" if t_naive else "-"
                naive_s = f"{t_naive:.2f}" if t_naive else "out of memory budget"
                print(f"| {name} | {n} | {dim} | {t_ours:.2f} | {naive_s} | {ratio} |", flush=True)
            a, p = x[::2], x[1::2]
            for name, fn in (("npairs", NPairsLoss(gather=False)), ("InfoNCE", InfoNCELoss(0.1, symmetric=True, gather=False))):
                t = timed(lambda a, p, fn=fn, y=y: fn(a, p, y[::2], y[1::2]), a, p)
                print(f"| {name} | {n} | {dim} | {t:.2f} | (already a matrix product) | - |", flush=True)


if __name__ == "__main__":
    main()
