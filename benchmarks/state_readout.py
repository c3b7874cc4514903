"""What an embedding carries of the world's state: a ridge regression from each TCN's agent-view embeddings
of training episodes to the ground truth of every frame (states.npz), scored by R^2 on the held-out episodes
(agent view and another camera). The liquid (the fraction in the bowl, in the cup, spilled) against the cup's
tilt and height: a multi-view embedding can tell instants apart by the cup alone. In the two-receptacle scene
(``--config family``) also the fraction in the jar and the cup's y (the side it pours on): whether an embedding
knows into *which* receptacle the liquid went, or only where the cup went. Columns that do not vary in the
held-out states are left out.

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
    "in the jar": lambda s: s["fraction_in_jar"] if "fraction_in_jar" in s else np.zeros(len(s["tilt"])),  # recordings before the jar
    "in the cup": lambda s: s["fraction_in_cup"],
    "spilled": lambda s: s["fraction_spilled"],
    "cup tilt": lambda s: s["tilt"],
    "cup height": lambda s: s["cup_position"][:, 2],
    "cup y": lambda s: s["cup_position"][:, 1],
}


def footage(episodes, view: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Each episode's frames of ``view`` (T, H, W, 3), decoded once for every checkpoint, and the
    states of all of them (N, len(STATES))."""
    frames = [ep.read_view(view) for ep in episodes]
    states = [ep.states() for ep in episodes]
    return frames, np.concatenate([np.stack([f(s) for f in STATES.values()], 1) for s in states])


def ridge(x: np.ndarray, y: np.ndarray, lam: float = 1e-2):
    """Ridge regression on standardized features (penalty ``lam`` per sample): a predictor of y."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = np.c_[(x - mu) / sd, np.ones(len(x))]
    w = np.linalg.solve(z.T @ z + lam * len(z) * np.eye(z.shape[1]), z.T @ y)
    return lambda q: np.c_[(q - mu) / sd, np.ones(len(q))] @ w


def r2(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The coefficient of determination of each column of y (N, K) -> (K,)."""
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
    fit = footage(train, args.view)
    sets = {"agent": footage(heldout, args.view), "another": footage(heldout, other)}
    varies = sets["agent"][1].std(0) > 1e-9
    names = [name for name, v in zip(STATES, varies) if v]
    print(f"| embedding | camera | " + " | ".join(names) + " |")
    print("| --- | --- |" + " ---: |" * len(names))
    for spec in args.checkpoint:
        encoder = checkpoint_encoder(spec, torch.device("cpu"))
        embed = lambda frames: np.concatenate([encoder(f) for f in frames])
        predict = ridge(embed(fit[0]), fit[1][:, varies])
        for label, (frames, y) in sets.items():
            print(f"| {encoder.name} | {label} | " + " | ".join(f"{v:.2f}" for v in r2(predict(embed(frames)), y[:, varies])) + " |")


if __name__ == "__main__":
    main()
