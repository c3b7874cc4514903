"""Relative position (Doersch et al. 2015): a centre patch and one of its 8 neighbours (with a gap
and jitter, against low-level shortcuts), each patch in grayscale or with two channels replaced by
noise (against chromatic aberration) and normalized by its own statistics; a classifier on their
concatenated embeddings names where the neighbour lies.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import UserError
from ..config import Config
from ..data.datasets import FrameBatches
from ..models import EmbeddingNet
from ..train.method import Method, as_in_training, frozen_bn_statistics, mlp, sample_frames
from .transforms import channel_noise, grayscale, patch_pairs, resize, standardize

class RelativePosition(Method):
    name = "relpos"
    val_items = 256

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg.relpos
        self.head = mlp(2 * cfg.model.embedding_dim, self.cfg.head_hidden, 8)

    def source(self, data, seed: int, rank: int, world: int):
        c = self.cfg
        need = 3 * c.patch + 2 * c.gap + 2 * c.jitter
        size = min(min(a.shape[2:4]) for a in data.arrays)
        if size < need:
            raise UserError(f"{data.dataset_root}: {size} px frames cannot hold 3 x 3 patches of relpos.patch={c.patch} px "
                            f"with relpos.gap={c.gap} and relpos.jitter={c.jitter} (they need {need} px)")
        return FrameBatches(data, c.batch_size, seed, rank, world)

    def logits(self, net: EmbeddingNet, frames: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        x = frames.to(net.mean.device).permute(0, 3, 1, 2).float().div_(255.0)  # at the recorded size
        centre, neighbour, labels, _ = patch_pairs(x, c.patch, c.gap, c.jitter, generator)
        both = torch.cat([centre, neighbour])
        colour = grayscale if c.aberration == "grayscale" else channel_noise
        both = standardize(resize(colour(both, c.aberration_prob, generator), c.tile_size))
        with frozen_bn_statistics(net):  # the running statistics stay those of whole frames
            z = net.raw(both.contiguous(memory_format=torch.channels_last))
        return self.head(torch.cat([z[: len(labels)], z[len(labels):]], 1)), labels

    def forward(self, net: EmbeddingNet, batch: dict) -> tuple[torch.Tensor, dict]:
        self.track_statistics(net, batch["frames"])
        logits, labels = self.logits(net, batch["frames"])
        accuracy = (logits.argmax(1) == labels).float().mean().item()
        return F.cross_entropy(logits, labels), {"frames": 2 * len(labels), "pretext_accuracy": accuracy}

    @torch.no_grad()
    def validate(self, net: EmbeddingNet, episodes: list[np.ndarray], rng: np.random.Generator) -> dict:
        g = torch.Generator(device=net.mean.device).manual_seed(int(rng.integers(2**31)))
        with as_in_training(net):
            logits, labels = self.logits(net, sample_frames(episodes, self.val_items, rng), g)
        return {"pretext_error": 1.0 - (logits.argmax(1) == labels).float().mean().item(), "pretext_chance_error": 7 / 8, "pretext_items": len(labels)}
