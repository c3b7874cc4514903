"""Figures of ``evaluate``: PCA trajectories, distance matrices, reward curves, a retrieval video,
confusion matrices."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..io import AtomicFile  # noqa: E402
from ..video import VideoWriter  # noqa: E402


def _save(fig, path: Path, dpi: int = 110) -> str:
    fig.tight_layout()
    try:
        with AtomicFile(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return path.name


def pca_trajectories(emb: np.ndarray, path: Path, title: str) -> str:
    """emb (V, T, D) of one episode: every view projected on the episode's first two principal
    components, coloured by time."""
    v, t, d = emb.shape
    flat = emb.reshape(v * t, d) - emb.reshape(v * t, d).mean(0)
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    proj = (flat @ vt[:2].T).reshape(v, t, 2)
    fig, ax = plt.subplots(figsize=(5, 4))
    markers = "os^Dv<>"
    for k in range(v):
        sc = ax.scatter(proj[k, :, 0], proj[k, :, 1], c=np.arange(t), cmap="viridis", s=14, marker=markers[k % 7], label=f"view {k}")
        ax.plot(proj[k, :, 0], proj[k, :, 1], lw=0.5, alpha=0.4, color="grey")
    fig.colorbar(sc, ax=ax, label="time step")
    ax.set(title=title, xlabel="PC 1", ylabel="PC 2")
    ax.legend(fontsize=7)
    return _save(fig, path)


def distance_matrix(a: np.ndarray, b: np.ndarray, path: Path, title: str, xlabel: str, ylabel: str) -> str:
    """Euclidean distances between every frame of ``a`` (T1, D) and of ``b`` (T2, D)."""
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    fig, ax = plt.subplots(figsize=(4.5, 4))
    im = ax.imshow(d, cmap="magma_r", origin="upper", aspect="auto")
    fig.colorbar(im, ax=ax, label="embedding distance")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return _save(fig, path)


def reward_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> str:
    """``{label: (reward (T,), fraction in bowl (T,))}``: reward over time, with the ground truth."""
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
    for label, (reward, poured) in curves.items():
        line = ax.plot(reward, label=label)[0]
        bx.plot(poured, color=line.get_color())
    ax.set(title=title, ylabel="learned reward")
    bx.set(xlabel="time step", ylabel="fraction in bowl", ylim=(-0.02, 1.02))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    bx.grid(alpha=0.3)
    return _save(fig, path)


def frame_strip(rows: dict[str, np.ndarray], times: np.ndarray, fps: float, path: Path, title: str = "") -> str:
    """A grid of frames: one row per ``{label: frames (K, H, W, 3)}``, one column per time step
    ``times`` (K,) (labelled in seconds at ``fps``)."""
    k = len(times)
    fig, axes = plt.subplots(len(rows), k, figsize=(1.6 * k, 1.75 * len(rows) + 0.3), squeeze=False)
    for r, (label, frames) in enumerate(rows.items()):
        for c in range(k):
            ax = axes[r, c]
            ax.imshow(frames[c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t = {times[c] / fps:.1f} s", fontsize=9)
        axes[r, 0].set_ylabel(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def confusion_matrix(counts: np.ndarray, rows: list[str], columns: list[str], path: Path, title: str,
                     ylabel: str, xlabel: str, show_counts: bool = True) -> str:
    """A heat map of ``counts`` (R, C) normalized per row, each cell labelled with its share (and count)."""
    counts = np.asarray(counts, float)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(columns) + 2.2, 0.8 * len(rows) + 1.6))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for r in range(len(rows)):
        for c in range(len(columns)):
            label = f"{share[r, c]:.2f}" + (f"\n({counts[r, c]:.0f})" if show_counts else "")
            ax.text(c, r, label, ha="center", va="center", fontsize=9,
                    color="white" if share[r, c] > 0.6 else "black")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return _save(fig, path)


def retrieval_video(query: np.ndarray, reference: np.ndarray, nn_idx: np.ndarray, path: Path, fps: float) -> str:
    """Each query frame beside its nearest reference frame: (T, H, W, 3) and (T2, H, W, 3)."""
    with VideoWriter(path, fps, (query.shape[2] * 2, query.shape[1])) as w:
        for t in range(len(query)):
            w.write(np.concatenate([query[t], reference[nn_idx[t]]], axis=1))
    return path.name


def eval_curve(history: list[dict], path: Path, title: str) -> str:
    """Fraction poured (mean ± std over evaluation episodes) and success rate against env steps."""
    steps = np.array([h["steps"] for h in history])
    mean = np.array([h["fraction_in_bowl_mean"] for h in history])
    std = np.array([h["fraction_in_bowl_std"] for h in history])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, mean, marker="o", label="fraction in bowl (mean)")
    ax.fill_between(steps, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), alpha=0.25, label="± std")
    ax.plot(steps, [h["success_rate"] for h in history], ls="--", label="success rate")
    ax.set_xlabel("environment steps")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path, dpi=120)
