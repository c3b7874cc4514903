"""What an embedding carries of the world's state: a ridge regression from each TCN's agent-view embeddings
of training episodes to the ground truth of every frame (states.npz), scored by R^2 on the held-out episodes
(agent view and another camera). The liquid (the fraction in the bowl, in the cup, spilled) against the cup's
tilt and height: a multi-view embedding can tell instants apart by the cup alone.

    python benchmarks/state_readout.py --data runs/q/data --heldout runs/q/data_heldout \\
        --checkpoint before=runs/a/checkpoints/best.pt --checkpoint after=runs/b/checkpoints/best.pt
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from tcn_robot.data.episodes import Dataset
from tcn_robot.encoders import checkpoint_encoder

STATES = {
    "in the bowl": lambda s: s["fraction_in_bowl"],
    "in the cup": lambda s: s["fraction_in_cup"],
    "spilled": lambda s: s["fraction_spilled"],
    "cup tilt": lambda s: s["tilt"],
    "cup height": lambda s: s["cup_position"][:, 2],
}


def read(encoder, episodes, view: int) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (N, D) of every frame of ``view`` and their states (N, len(STATES))."""
    x, y = [], []
    for ep in episodes:
        s = ep.states()
        x.append(encoder(ep.read_view(view)))
        y.append(np.stack([f(s) for f in STATES.values()], 1))
    return np.concatenate(x), np.concatenate(y)


def ridge(x: np.ndarray, y: np.ndarray, lam: float = 1e-2):
    """Ridge regression on standardized features (penalty ``lam`` per sample): a predictor of y."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = np.c_[(x - mu) / sd, np.ones(len(x))]
    w = np.linalg.solve(z.T @ z + lam * len(z) * np.eye(z.shape[1]), z.T @ y)
    return lambda q: np.c_[(q - mu) / sd, np.ones(len(q))] @ w


def r2(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 1 - ((pred - y) ** 2).sum(0) / np.maximum(((y - y.mean(0)) ** 2).sum(0), 1e-12)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="training episodes (the regression is fit on them)")
    p.add_argument("--heldout", type=Path, required=True, help="held-out episodes (R^2 on them)")
    p.add_argument("--checkpoint", action="append", required=True, metavar="NAME=PATH")
    p.add_argument("--episodes", type=int, default=60, help="training episodes read (the first N)")
    p.add_argument("--view", type=int, default=0, help="the agent's camera")
    args = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    train = Dataset.open(args.data).episodes[: args.episodes]
    heldout = Dataset.open(args.heldout).episodes
    other = (args.view + 1) % heldout[0].num_views
    print(f"| embedding | camera | " + " | ".join(STATES) + " |")
    print("| --- | --- |" + " ---: |" * len(STATES))
    for spec in args.checkpoint:
        encoder = checkpoint_encoder(spec, torch.device("cpu"))
        predict = ridge(*read(encoder, train, args.view))
        for label, view in (("agent", args.view), ("another", other)):
            x, y = read(encoder, heldout, view)
            print(f"| {encoder.name} | {label} | " + " | ".join(f"{v:.2f}" for v in r2(predict(x), y)) + " |")


if __name__ == "__main__":
    main()
