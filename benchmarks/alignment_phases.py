"""Where in an episode an embedding's cross-view alignment fails: ``evaluate``'s alignment error by camera, split by
the phase of the pour the frame belongs to (ground truth from states.npz: ``before`` the first particle leaves the
cup, ``pouring`` while liquid flows, ``after`` the last particle has landed), and how often a frame after the pour
has its nearest frame of another view before it, where only what the pour left behind (the liquid in the
receptacle, the cup's fill) tells the two apart. Episodes in which nothing was poured are left out.

    python benchmarks/alignment_phases.py --data runs/c/fresh_novel \\
        --checkpoint wide6=runs/c/tcn_wide6/checkpoints/best.pt --checkpoint oracle=runs/c/tcn_oracle/checkpoints/best.pt

Prints per checkpoint and camera the alignment error (%) of the frames of each phase against every other view of
their episode, and the share of the ``after`` frames matched to a ``before`` frame.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from tcn_robot.data.episodes import load_demo
from tcn_robot.encoders import checkpoint_encoder
from tcn_robot.evaluate.metrics import nearest_indices

PHASES = ("before", "pouring", "after")


def pour_phases(liquid_flowing: np.ndarray) -> np.ndarray | None:
    """Each frame's phase (T,) as an index into ``PHASES`` from states.npz's ``liquid_flowing`` (T,) bool: before
    its first flowing frame, from the first to the last, after the last; None when no liquid ever flowed."""
    flowing = np.flatnonzero(liquid_flowing)
    if not len(flowing):
        return None
    t = np.arange(len(liquid_flowing))
    return (t >= flowing[0]).astype(int) + (t > flowing[-1])


def phase_alignment(embeddings: np.ndarray, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each view i of one episode's ``embeddings`` (V, T, D) and each other view j, every frame t's nearest frame
    t_nn of view j: the sums of ``|t - t_nn| / T`` (V, 3) and the counts of (phase of t, phase of t_nn) (V, 3, 3),
    both summed over the other views; ``phase`` (T,) indexes ``PHASES``. The errors' sum over phases, divided by the
    frames' count, is ``evaluate``'s alignment error by camera."""
    e = np.asarray(embeddings)
    v, t, _ = e.shape
    errors, counts = np.zeros((v, len(PHASES))), np.zeros((v, len(PHASES), len(PHASES)))
    for i in range(v):
        for j in range(v):
            if i != j:
                nn = nearest_indices(e[i], e[j])
                np.add.at(errors[i], phase, np.abs(np.arange(t) - nn) / t)
                np.add.at(counts[i], (phase, phase[nn]), 1)
    return errors, counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="a recorded set (episode folders with states.npz)")
    p.add_argument("--checkpoint", action="append", required=True, metavar="NAME=PATH")
    args = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    episodes = []
    for ep in sorted(d for d in args.data.iterdir() if (d / "states.npz").is_file()):
        with np.load(ep / "states.npz") as states:
            phase = pour_phases(states["liquid_flowing"])
        if phase is not None:
            episodes.append((ep, phase, len(list(ep.glob("view*.mp4")))))
    if not episodes:
        raise SystemExit(f"{args.data}: no episode in which liquid flowed")
    print(f"{args.data}: {len(episodes)} episodes with a pour\n")
    print("| checkpoint | camera | alignment error %: before / pouring / after the pour | all | after-pour frames matched before it |")
    print("| --- | --- | --- | ---: | ---: |")
    for spec in args.checkpoint:
        encoder = checkpoint_encoder(spec, torch.device("cpu"))
        errors, counts = 0.0, 0.0
        for ep, phase, views in episodes:
            e, c = phase_alignment(np.stack([encoder(load_demo(ep, v)) for v in range(views)]), phase)
            errors, counts = errors + e, counts + c
        frames = counts.sum(2)  # (V, 3) frames of each phase times the other views
        for v in range(len(frames)):
            by_phase = " / ".join(f"{100 * errors[v, k] / frames[v, k]:.1f}" for k in range(len(PHASES)))
            print(f"| {encoder.name} | view {v} | {by_phase} | {100 * errors[v].sum() / frames[v].sum():.1f} "
                  f"| {100 * counts[v, 2, 0] / frames[v, 2]:.0f}% |")


if __name__ == "__main__":
    main()
