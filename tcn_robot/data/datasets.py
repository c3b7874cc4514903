"""Torch datasets over the frame cache shared by the training methods (a method's own sampler lives beside it).

Frames come out as uint8 tensors (..., H, W, 3); conversion to float, normalization and
augmentation happen batched on the training device (see ``data/augment.py``).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import IterableDataset, get_worker_info

from .. import UserError
from .cache import FrameCache


def _rank_share(n: int, rank: int, world_size: int) -> list[int]:
    """Episode indices of one rank (every world_size-th), or all when there are too few."""
    share = list(range(rank, n, world_size))
    return share or list(range(n))


class Batches(IterableDataset):
    """Endless batches drawn from the episodes of one rank; seeded per (seed, rank, worker)."""

    def __init__(self, cache: FrameCache, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.cache, self.seed, self.rank = cache, seed, rank
        self.episodes = _rank_share(len(cache), rank, world_size)
        sizes = {}
        for ep, arr in zip(cache.episodes, cache.arrays):
            sizes.setdefault(arr.shape[2:4], ep.name)
        if len(sizes) > 1:
            listed = ", ".join(f"{w}x{h} ({name})" for (h, w), name in sizes.items())
            raise UserError(f"{cache.dataset_root}: episodes of different image sizes ({listed}); training batches need one size: "
                            "import the videos again with --image-size")

    def label_embodiments(self) -> None:
        """Index the embodiment of every view of every episode (meta ``view_embodiments``, else
        ``embodiment``; random exploration is the robot's) for ``embodiment_of``; names sorted in
        ``self.embodiments``. Needs two embodiments at least."""
        kinds = {i: self.cache.episodes[i].meta.get("view_embodiments")
                 or [self.cache.episodes[i].meta.get("embodiment", "unknown")] * self.cache.arrays[i].shape[1]
                 for i in self.episodes}
        self.embodiments = sorted({k for v in kinds.values() for k in v})
        if len(self.embodiments) < 2:
            raise UserError(f"{self.cache.dataset_root}: domain confusion on the TCN batch (tcn.domain_frames=batch) needs "
                            f"footage of two embodiments at least; found only {', '.join(self.embodiments)} (tcn.domain_weight=0 trains "
                            "without it)")
        self._view_kind = {i: np.array([self.embodiments.index(k) for k in v]) for i, v in kinds.items()}

    def embodiment_of(self, episode: int, views: np.ndarray) -> np.ndarray:
        """(len(views),) int64: the index in ``self.embodiments`` of who is filmed in these views of ``episode``."""
        return self._view_kind[int(episode)][views]

    def _rng(self) -> np.random.Generator:
        info = get_worker_info()
        return np.random.default_rng([self.seed, self.rank, info.id if info else 0])

    def __iter__(self):
        rng = self._rng()
        while True:
            yield self.sample(rng)

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class MultiViewTCNBatches(Batches):
    """Multi-view TCN batches (Sermanet et al. 2017, Sec. III-A).

    Each batch takes ``sequences`` episodes (without replacement when there are enough) and
    ``per_sequence`` distinct time steps from each; anchor and positive are the same time step
    seen from two different views. ``label`` is unique across the batch (one per episode and time
    step), so every other row of the batch is a negative.

    Yields: anchor, positive (B, H, W, 3) uint8; label, episode, time (B,) int64; B = sequences * per_sequence;
    with ``embodiments``, also embodiment (2B,) int64: who is filmed in each anchor, then each positive
    (``label_embodiments``).
    """

    def __init__(self, cache: FrameCache, sequences: int, per_sequence: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 embodiments: bool = False) -> None:
        super().__init__(cache, seed, rank, world_size)
        self.embodied = embodiments
        single = [cache.episodes[i].name for i in self.episodes if cache.episodes[i].num_views < 2]
        if single:
            raise UserError(f"{cache.dataset_root}: episode {single[0]} has one view ({len(single)} such); multi-view TCN needs "
                            "at least two per episode (use tcn.mode=singleview)")
        if embodiments:
            self.label_embodiments()
        self.sequences, self.per_sequence = sequences, per_sequence

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        eps = rng.choice(self.episodes, self.sequences, replace=len(self.episodes) < self.sequences)
        anchors, positives, times, episodes, kinds_a, kinds_p = [], [], [], [], [], []
        for e in eps:
            arr = self.cache.arrays[e]
            t = np.sort(rng.choice(arr.shape[0], self.per_sequence, replace=arr.shape[0] < self.per_sequence))
            va = rng.integers(arr.shape[1], size=len(t))
            vp = (va + rng.integers(1, arr.shape[1], size=len(t))) % arr.shape[1]  # always another view
            anchors.append(arr[t, va])
            positives.append(arr[t, vp])
            times.append(t)
            episodes.append(np.full(len(t), e))
            if self.embodied:
                kinds_a.append(self.embodiment_of(e, va))
                kinds_p.append(self.embodiment_of(e, vp))
        n = self.sequences * self.per_sequence
        out = {
            "anchor": torch.from_numpy(np.concatenate(anchors)),
            "positive": torch.from_numpy(np.concatenate(positives)),
            "label": torch.arange(n),
            "episode": torch.from_numpy(np.concatenate(episodes)),
            "time": torch.from_numpy(np.concatenate(times)),
        }
        if self.embodied:
            out["embodiment"] = torch.from_numpy(np.concatenate(kinds_a + kinds_p)).long()
        return out


class SingleViewTCNBatches(Batches):
    """Single-view TCN triplets (Sermanet et al. 2017, Sec. III-B): from one view of one episode,
    a positive within ``pos_radius`` frames of the anchor (not the anchor itself) and a negative
    at least ``neg_radius`` frames away.

    Yields: anchor, positive, negative (B, H, W, 3) uint8; episode, time, time_positive,
    time_negative (B,) int64; with ``embodiments``, also embodiment (3B,) int64: who is filmed in each
    anchor, positive and negative, in that order (``label_embodiments``).
    """

    def __init__(self, cache: FrameCache, sequences: int, per_sequence: int, pos_radius: int, neg_radius: int,
                 seed: int = 0, rank: int = 0, world_size: int = 1, embodiments: bool = False) -> None:
        super().__init__(cache, seed, rank, world_size)
        self.embodied = embodiments
        if embodiments:
            self.label_embodiments()
        if not 1 <= pos_radius < neg_radius:
            raise UserError(f"need 1 <= tcn.pos_radius < tcn.neg_radius, got {pos_radius}, {neg_radius}")
        short = [i for i in self.episodes if cache.arrays[i].shape[0] <= 2 * neg_radius]
        if short:
            raise UserError(f"{cache.dataset_root}: episode {cache.episodes[short[0]].name} has {cache.arrays[short[0]].shape[0]} frames, "
                            f"too few for single-view negatives at least tcn.neg_radius={neg_radius} frames away")
        self.sequences, self.per_sequence = sequences, per_sequence
        self.pos_radius, self.neg_radius = pos_radius, neg_radius

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        eps = rng.choice(self.episodes, self.sequences, replace=len(self.episodes) < self.sequences)
        out = {k: [] for k in ("anchor", "positive", "negative", "episode", "time", "time_positive", "time_negative")}
        kinds = []
        for e in eps:
            arr = self.cache.arrays[e]
            n = arr.shape[0]
            t = rng.integers(n, size=self.per_sequence)
            v = rng.integers(arr.shape[1], size=self.per_sequence)
            offset = rng.integers(1, self.pos_radius + 1, size=len(t)) * rng.choice([-1, 1], size=len(t))
            tp = np.where((t + offset < 0) | (t + offset >= n), t - offset, t + offset)
            # negatives: uniform over the frames at least neg_radius away
            tn = np.empty_like(t)
            for k, tk in enumerate(t):
                far = np.concatenate([np.arange(0, max(0, tk - self.neg_radius + 1)), np.arange(min(n, tk + self.neg_radius), n)])
                tn[k] = rng.choice(far)
            out["anchor"].append(arr[t, v])
            out["positive"].append(arr[tp, v])
            out["negative"].append(arr[tn, v])
            out["episode"].append(np.full(len(t), e))
            out["time"].append(t)
            out["time_positive"].append(tp)
            out["time_negative"].append(tn)
            if self.embodied:
                kinds.append(self.embodiment_of(e, v))
        batch = {k: torch.from_numpy(np.concatenate(v)) for k, v in out.items()}
        if self.embodied:
            batch["embodiment"] = torch.from_numpy(np.concatenate(kinds * 3)).long()
        return batch


class FrameBatches(Batches):
    """Single frames for the image pretext methods: ``batch_size`` (episode, time, view) triples
    drawn uniformly from the frames of one rank's episodes.

    Yields: frames (B, H, W, 3) uint8; index (B,) int64, the frame's number among every frame of
    every view of the dataset's episodes (the same on every rank: PIRL's memory-bank row); episode,
    time, view (B,) int64.
    """

    def __init__(self, cache: FrameCache, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(cache, seed, rank, world_size)
        self.batch_size = batch_size
        sizes = [a.shape[0] * a.shape[1] for a in cache.arrays]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.num_frames = int(self.offsets[-1])
        weights = np.array([sizes[i] for i in self.episodes], float)
        self.p = weights / weights.sum()

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        eps = rng.choice(self.episodes, self.batch_size, p=self.p)
        frames, out = [], {k: [] for k in ("index", "episode", "time", "view")}
        for e in eps:
            arr = self.cache.arrays[e]
            t, v = int(rng.integers(arr.shape[0])), int(rng.integers(arr.shape[1]))
            frames.append(arr[t, v])
            for k, x in (("index", self.offsets[e] + t * arr.shape[1] + v), ("episode", e), ("time", t), ("view", v)):
                out[k].append(x)
        return {"frames": torch.from_numpy(np.stack(frames)), **{k: torch.tensor(v, dtype=torch.int64) for k, v in out.items()}}


class EmbodimentSequences(Batches):
    """Demonstrations of every embodiment for cycle-consistent alignment (``losses.CycleConsistencyLoss``):
    ``sequences`` episodes taken in turn from each embodiment (meta ``embodiment``; only episodes of the
    ``human`` and ``robot`` demonstrators count, not random exploration nor paired twins), each as
    ``frames`` sorted distinct time steps of one random view.

    Yields: align_frames (S, N, H, W, 3) uint8; align_time (S, N) float32, each step as a fraction of its
    episode (t / (T - 1)); align_episode (S,) int64; align_embodiment (S,) int64, the index of the
    episode's embodiment in ``embodiments`` (sorted names).
    """

    DEMONSTRATORS = ("human", "robot")

    def __init__(self, cache: FrameCache, sequences: int, frames: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(cache, seed, rank, world_size)
        self.groups: dict[str, list[int]] = {}
        for i in self.episodes:
            meta = cache.episodes[i].meta
            if meta.get("demonstrator") in self.DEMONSTRATORS:
                self.groups.setdefault(meta.get("embodiment", "unknown"), []).append(i)
        if len(self.groups) < 2:
            found = ", ".join(f"{k}: {len(v)}" for k, v in self.groups.items()) or "none"
            raise UserError(f"{cache.dataset_root}: aligning embodiments (tcn.align_weight or tcn.domain_weight > 0) needs human and robot "
                            f"demonstrations (demonstrator human or robot); found {found}")
        short = [cache.episodes[i].name for g in self.groups.values() for i in g if cache.arrays[i].shape[0] < frames]
        if short:
            raise UserError(f"{cache.dataset_root}: episode {short[0]} has fewer than tcn.align_frames={frames} frames")
        self.sequences, self.frames = sequences, frames
        self.embodiments = sorted(self.groups)

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        names = list(self.groups)
        first = int(rng.integers(len(names)))
        clips, times, eps, kinds = [], [], [], []
        for k in range(self.sequences):
            e = int(rng.choice(self.groups[names[(first + k) % len(names)]]))
            arr = self.cache.arrays[e]
            t = np.sort(rng.choice(arr.shape[0], self.frames, replace=False))
            clips.append(arr[t, int(rng.integers(arr.shape[1]))])
            times.append(t / max(arr.shape[0] - 1, 1))
            eps.append(e)
            kinds.append(self.embodiments.index(names[(first + k) % len(names)]))
        return {"align_frames": torch.from_numpy(np.stack(clips)),
                "align_time": torch.tensor(np.stack(times), dtype=torch.float32),
                "align_episode": torch.tensor(eps, dtype=torch.int64),
                "align_embodiment": torch.tensor(kinds, dtype=torch.int64)}


class Joined:
    """Batches of several sources drawn with one generator, their keys merged into one dict."""

    def __init__(self, *sources: _Batches) -> None:
        self.sources = sources

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        out = {}
        for source in self.sources:
            out.update(source.sample(rng))
        return out


class FrameAttributes(TorchDataset):
    """Every frame of every view with its five attribute labels (contact, distance,
    liquid_flowing, has_liquid, container_angle). Episodes without states are left out.

    Item: (frame (H, W, 3) uint8, labels (5,) int64, episode, time).
    """

    def __init__(self, cache: FrameCache, views: list[int] | None = None) -> None:
        self.cache = cache
        self.labels = {i: cache.labels(i) for i in range(len(cache))}
        self.index = [
            (i, v, t)
            for i, lab in self.labels.items() if lab is not None
            for v in (views if views is not None else range(cache.arrays[i].shape[1]))
            for t in range(cache.arrays[i].shape[0])
        ]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int):
        i, v, t = self.index[k]
        return torch.from_numpy(np.array(self.cache.arrays[i][t, v])), torch.from_numpy(self.labels[i][t]), i, t


class Clips(TorchDataset):
    """Short clips of ``length`` consecutive frames from one view, starting every ``stride`` frames.

    Item: (clip (length, H, W, 3) uint8, episode, view, start).
    """

    def __init__(self, cache: FrameCache, length: int, stride: int = 1) -> None:
        if length < 1 or stride < 1:
            raise ValueError("length and stride must be >= 1")
        self.cache, self.length = cache, length
        self.index = [
            (i, v, s)
            for i, arr in enumerate(cache.arrays)
            for v in range(arr.shape[1])
            for s in range(0, arr.shape[0] - length + 1, stride)
        ]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int):
        i, v, s = self.index[k]
        return torch.from_numpy(np.array(self.cache.arrays[i][s : s + self.length, v])), i, v, s
