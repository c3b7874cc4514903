"""What an embedding carries of the world's state: a ridge regression from each TCN's agent-view embeddings
of training episodes to the ground truth of every frame (states.npz), scored by R^2 on the held-out episodes
(agent view and another camera). The liquid (the fraction in the bowl, in the cup, spilled) against the cup's
tilt and height: a multi-view embedding can tell instants apart by the cup alone. In the two-receptacle scene
(``--config family``) also the fraction in the jar and the cup's y (the side it pours on): whether an embedding
knows into *which* receptacle the liquid went, or only where the cup went. Columns that do not vary in the
held-out states are left out. There a second table classifies each episode that performed a behaviour (ridge on
+-1 targets, fit on the training episodes): the side of the pour from the frame of greatest tilt, the side the
bowl stands on from the first frame, and the behaviour from those two frames and the last.

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
from tcn_robot.envs.behaviours import pour_side

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


def episode_labels(episodes) -> tuple[list[int], dict[str, np.ndarray]] | None:
    """Of the episodes that performed a behaviour of a scene with several receptacles: their indices and per
    episode the frame of greatest tilt (``t``), the side of the pour (sign of the cup's y there), the side the bowl
    stands on (the pour's for ``bowl`` and ``half``, the other for ``jar``) and the behaviour. None unless they
    performed at least two behaviours."""
    keep = [i for i, ep in enumerate(episodes) if ep.meta.get("behaviour_performed", "none") != "none"]
    if len({episodes[i].meta["behaviour_performed"] for i in keep}) < 2:
        return None
    t, pour = np.array([pour_side(episodes[i].states()) for i in keep]).T
    behaviour = np.array([episodes[i].meta["behaviour_performed"] for i in keep])
    return keep, {"t": t, "pour side": pour, "bowl side": np.where(behaviour == "jar", -pour, pour), "behaviour": behaviour}


def classify(x: np.ndarray, labels: np.ndarray, q: np.ndarray, lam: float = 1e-2) -> np.ndarray:
    """Ridge regression to +-1 indicators of each class of ``labels`` fit on (x, labels); the predicted class of q."""
    classes = np.unique(labels)
    predict = ridge(x, np.stack([np.where(labels == c, 1.0, -1.0) for c in classes], 1), lam)
    return classes[predict(q).argmax(1)]


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
    encoders = [checkpoint_encoder(spec, torch.device("cpu")) for spec in args.checkpoint]
    embedded = {}  # (encoder, set) -> each episode's embeddings (T, D)
    for encoder in encoders:
        embedded[encoder.name, "fit"] = [encoder(f) for f in fit[0]]
        predict = ridge(np.concatenate(embedded[encoder.name, "fit"]), fit[1][:, varies])
        for label, (frames, y) in sets.items():
            embedded[encoder.name, label] = [encoder(f) for f in frames]
            pred = predict(np.concatenate(embedded[encoder.name, label]))
            print(f"| {encoder.name} | {label} | " + " | ".join(f"{v:.2f}" for v in r2(pred, y[:, varies])) + " |")
    labelled = episode_labels(train), episode_labels(heldout)
    if None in labelled:
        return
    (fit_keep, fit_lab), (held_keep, held_lab) = labelled
    print(f"\n| embedding | camera | pour side (greatest tilt) | bowl side (first frame) | behaviour (first, greatest tilt, last) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for encoder in encoders:
        def features(name: str, keep: list[int], lab: dict) -> dict[str, np.ndarray]:
            z = [embedded[encoder.name, name][i] for i in keep]
            first, tilt = np.stack([e[0] for e in z]), np.stack([e[k] for e, k in zip(z, lab["t"])])
            return {"pour side": tilt, "bowl side": first, "behaviour": np.c_[first, tilt, np.stack([e[-1] for e in z])]}
        x_fit = features("fit", fit_keep, fit_lab)
        for label in sets:
            x = features(label, held_keep, held_lab)
            acc = [np.mean(classify(x_fit[k], fit_lab[k], x[k]) == held_lab[k]) for k in x]
            print(f"| {encoder.name} | {label} | " + " | ".join(f"{100 * a:.0f}%" for a in acc) + f" |  ({len(held_keep)} episodes)")


if __name__ == "__main__":
    main()
