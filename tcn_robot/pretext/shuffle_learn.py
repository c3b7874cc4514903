"""Shuffle & Learn (Misra et al. 2016), the TCN paper's own baseline: three frames of one video, from
a window where the video moves, through the shared network; a classifier on their concatenated
embeddings tells whether they are in temporal order (either direction): positives (b, c, d) or
(d, c, b), negatives (b, a, d) or (b, e, d) of five sorted frames a < b < c < d < e.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Config
from ..data.augment import build_clip_augment
from .. import UserError
from ..data.cache import FrameCache
from ..data.datasets import Batches
from ..models import EmbeddingNet
from ..train.method import Method, as_in_training, mlp


def motion(frames: np.ndarray) -> np.ndarray:
    """Frames of one video (T, H, W, 3) uint8 -> how much each step changes the image (T - 1,): the mean
    absolute difference of consecutive frames."""
    f = frames.astype(np.int16)
    return np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))


def order_tuple(window: np.ndarray, positive: bool, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Shuffle & Learn's frames (Misra et al. 2016): five sorted distinct steps a < b < c < d < e of
    ``window`` (indices into a video); a positive is (b, c, d) or (d, c, b), a negative (b, a, d) or
    (b, e, d) or one of them reversed: only the middle frame decides. Returns (the three steps, a..e)."""
    a, b, c, d, e = np.sort(rng.choice(window, 5, replace=False)).tolist()
    if positive:
        three = [b, c, d]
    else:
        three = [b, a, d] if rng.random() < 0.5 else [b, e, d]
    return (three[::-1] if rng.random() < 0.5 else three), [a, b, c, d, e]


class TupleBatches(Batches):
    """Shuffle & Learn's tuples: three frames of one view of one episode, from a window of ``window``
    steps chosen where the video moves (start probability proportional to the motion inside the
    window, ``motion`` of consecutive frames), in order (label 1) with probability ``positive_share``.

    Yields: tuples (B, 3, H, W, 3) uint8; label (B,) int64; steps (B, 3) int64; episode, view (B,) int64.
    """

    def __init__(self, cache: FrameCache, batch_size: int, window: int, positive_share: float, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        super().__init__(cache, seed, rank, world_size)
        self.batch_size, self.window, self.positive_share = batch_size, window, positive_share
        short = [cache.episodes[i].name for i in self.episodes if cache.arrays[i].shape[0] < window]
        if short or window < 5:
            raise UserError(f"{cache.dataset_root}: shuffle-learn windows of {window} steps need at least 5 and episodes "
                            f"as long{f' (episode {short[0]} is shorter)' if short else ''}")
        self.starts = {}  # (episode, view) -> probabilities of each window start
        for i in self.episodes:
            arr = cache.arrays[i]
            for v in range(arr.shape[1]):
                self.starts[i, v] = window_starts(motion(np.asarray(arr[:, v])), window)

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        out = {k: [] for k in ("tuples", "label", "steps", "episode", "view")}
        for e in rng.choice(self.episodes, self.batch_size):
            arr = self.cache.arrays[e]
            v = int(rng.integers(arr.shape[1]))
            p = self.starts[e, v]
            start = int(rng.choice(len(p), p=p))
            positive = bool(rng.random() < self.positive_share)
            three, _ = order_tuple(np.arange(start, start + self.window), positive, rng)
            for k, x in (("tuples", arr[three, v]), ("label", int(positive)), ("steps", three), ("episode", e), ("view", v)):
                out[k].append(x)
        return {"tuples": torch.from_numpy(np.stack(out["tuples"])),
                **{k: torch.tensor(out[k], dtype=torch.int64) for k in ("label", "steps", "episode", "view")}}


def window_starts(moves: np.ndarray, window: int) -> np.ndarray:
    """The probability of each start of a ``window``-step window of a video with step changes ``moves``
    (T - 1,): proportional to the change inside the window (uniform if nothing moves)."""
    inside = np.convolve(moves, np.ones(window - 1), mode="valid")  # windows of `window` frames hold window - 1 steps
    return inside / inside.sum() if inside.sum() > 0 else np.full(len(inside), 1.0 / len(inside))


class ShuffleLearn(Method):
    name = "shuffle-learn"
    val_items = 256

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg.shuffle_learn
        self.augment = build_clip_augment(cfg.augment, cfg.model.image_size)  # one crop per tuple: motion is the cue
        self.head = mlp(3 * cfg.model.embedding_dim, self.cfg.head_hidden, 2)

    def source(self, data, seed: int, rank: int, world: int):
        c = self.cfg
        return TupleBatches(data, c.batch_size, c.window, c.positive_share, seed, rank, world)

    def logits(self, net: EmbeddingNet, tuples: torch.Tensor, augment=None) -> torch.Tensor:
        """Tuples (B, 3, H, W, 3) uint8 -> in-order logits (B, 2)."""
        b = len(tuples)
        x = net.to_unit(tuples.flatten(0, 1)).unflatten(0, (b, 3))
        if augment is not None:
            x = augment(x)
        return self.head(net.raw(net.normalize(x.flatten(0, 1))).view(b, -1))

    def forward(self, net: EmbeddingNet, batch: dict) -> tuple[torch.Tensor, dict]:
        labels = batch["label"].to(net.mean.device)
        # classes weighted by their share, so that the rarer in-order tuples count as much as the others
        share = self.cfg.positive_share
        weight = torch.tensor([1 / (1 - share), 1 / share], device=labels.device) / 2
        return F.cross_entropy(self.logits(net, batch["tuples"], self.augment), labels, weight=weight), {"frames": 3 * len(labels)}

    @torch.no_grad()
    def validate(self, net: EmbeddingNet, episodes: list[np.ndarray], rng: np.random.Generator) -> dict:
        """Balanced error (mean of the two classes' errors; chance 0.5) on half in-order, half shuffled
        tuples from held-out episodes."""
        w = self.cfg.window
        tuples, labels = [], []
        for i in range(self.val_items):
            a = episodes[int(rng.integers(len(episodes)))]
            if a.shape[0] < w:
                continue
            v = int(rng.integers(a.shape[1]))
            p = window_starts(motion(np.asarray(a[:, v])), w)
            start = int(rng.choice(len(p), p=p))
            three, _ = order_tuple(np.arange(start, start + w), i % 2 == 0, rng)
            tuples.append(a[three, v])
            labels.append(int(i % 2 == 0))
        with as_in_training(net):
            pred = self.logits(net, torch.from_numpy(np.stack(tuples))).argmax(1).cpu().numpy()
        labels = np.array(labels)
        error = float(np.mean([np.mean(pred[labels == k] != k) for k in (0, 1)]))
        return {"pretext_error": error, "pretext_chance_error": 0.5, "pretext_items": len(labels)}
