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
from ..data.datasets import TupleBatches, motion, order_tuple, window_starts
from ..models import EmbeddingNet
from ..train.method import Method, as_in_training, mlp


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
