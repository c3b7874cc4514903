"""RotNet (Gidaris et al. 2018): all four rotations of every (augmented, square) frame in the same
batch; a classifier on the embedding names the rotation.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Config
from ..data.augment import build_augment
from ..data.datasets import FrameBatches
from ..models import EmbeddingNet
from ..train.method import Method, as_in_training, mlp, sample_frames
from .transforms import rotations


class Rotation(Method):
    name = "rotation"
    val_items = 512

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg.rotation
        self.augment = build_augment(cfg.augment, cfg.model.image_size)
        self.head = mlp(cfg.model.embedding_dim, self.cfg.head_hidden, 4)

    def source(self, data, seed: int, rank: int, world: int):
        return FrameBatches(data, self.cfg.batch_size, seed, rank, world)

    def logits(self, net: EmbeddingNet, frames: torch.Tensor, augment=None) -> tuple[torch.Tensor, torch.Tensor]:
        x = net.to_unit(frames)
        turned, labels = rotations(augment(x) if augment is not None else x)
        return self.head(net.raw(net.normalize(turned))), labels

    def forward(self, net: EmbeddingNet, batch: dict) -> tuple[torch.Tensor, dict]:
        logits, labels = self.logits(net, batch["frames"], self.augment)
        accuracy = (logits.argmax(1) == labels).float().mean().item()
        return F.cross_entropy(logits, labels), {"frames": len(labels), "pretext_accuracy": accuracy}

    @torch.no_grad()
    def validate(self, net: EmbeddingNet, episodes: list[np.ndarray], rng: np.random.Generator) -> dict:
        with as_in_training(net):
            logits, labels = self.logits(net, sample_frames(episodes, self.val_items // 4, rng))
        return {"pretext_error": 1.0 - (logits.argmax(1) == labels).float().mean().item(), "pretext_chance_error": 0.75, "pretext_items": len(labels)}
