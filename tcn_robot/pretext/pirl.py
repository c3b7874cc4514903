"""PIRL (Misra & van der Maaten 2019): a frame and its jigsaw-shuffled tiles should map to the same
representation. The frame goes through the network and a linear projection f; its tiles through the
network one by one, concatenated and projected by g. A memory bank holds a slowly updated
representation of every training frame; a contrastive loss against the bank (``pirl.loss``: the paper's
noise-contrastive estimation, ``losses.NCELoss``, or InfoNCE, ``losses.MemoryInfoNCELoss``) makes the bank
entry of the frame score above bank entries of other frames, for both branches:

    loss = w L(bank[i], g(v_T)) + (1 - w) L(bank[i], f(v_I)),   bank[i] <- norm(m bank[i] + (1 - m) f(v_I)).

The bank (one row per frame of every view of the training episodes) and the permutation set are
buffers, saved in checkpoints; every rank applies every rank's bank updates, so the banks stay equal.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import distributed
from ..config import Config
from ..data.augment import build_augment
from ..data.datasets import FrameBatches
from ..losses import MemoryInfoNCELoss, NCELoss
from ..models import EmbeddingNet
from ..train.method import Method, as_in_training, sample_frames
from .jigsaw import embed_tiles, puzzle_tiles
from .transforms import greedy_permutations, shuffle_tiles


class RunningStandardize(nn.Module):
    """(B, D) -> (x - mean) / std with the running mean and variance of the inputs seen in training
    (exponential averages, ``momentum`` per batch; set from the first batch): a fixed map at any moment,
    updated slowly, so that a frame's projection does not depend on the rest of its batch."""

    def __init__(self, dim: int, momentum: float = 0.01, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                m = self.momentum if self.seen > 0 else 1.0
                self.mean.lerp_(x.mean(0).to(self.mean.dtype), m)
                self.var.lerp_(x.var(0, unbiased=False).to(self.var.dtype), m)
                self.seen += 1
        return (x - self.mean) / torch.sqrt(self.var + self.eps)


class PIRL(Method):
    name = "pirl"
    val_items = 128

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        c = self.cfg = cfg.pirl
        k, d = c.tiles.grid**2, cfg.model.embedding_dim
        self.augment = build_augment(cfg.augment, cfg.model.image_size)
        # each projection standardizes its input by running statistics first: the embeddings of an untrained
        # network differ little from frame to frame, and a bank of near-equal entries gives NCE nothing to
        # separate; unlike batch norm, the same frame gets the same projection in any batch, as its bank entry must
        self.f = nn.Sequential(RunningStandardize(d), nn.Linear(d, c.projection_dim))
        self.g = nn.Sequential(RunningStandardize(k * d), nn.Linear(k * d, c.projection_dim))
        self.register_buffer("permutations", torch.from_numpy(greedy_permutations(c.permutations, k, c.permutation_seed)))
        self.register_buffer("bank", torch.zeros(0, c.projection_dim))  # one row per training frame, made by source()

    def source(self, data, seed: int, rank: int, world: int):
        frames = FrameBatches(data, self.cfg.batch_size, seed, rank, world)
        self.bank = F.normalize(torch.randn(frames.num_frames, self.cfg.projection_dim), dim=1)
        make = (lambda: NCELoss(frames.num_frames, self.cfg.temperature)) if self.cfg.loss == "nce" else (
            lambda: MemoryInfoNCELoss(self.cfg.temperature))
        self.loss_tiles, self.loss_image = make(), make()
        return frames

    def represent(self, net: EmbeddingNet, frames: torch.Tensor, augment=None, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(f(v_I), g(v_T)), each (B, projection_dim), L2-normalized."""
        image = F.normalize(self.f(net.raw(self.inputs(net, frames, augment))), dim=1)
        shuffled, _ = shuffle_tiles(puzzle_tiles(net, frames, self.cfg.tiles, generator), self.permutations, generator)
        return image, F.normalize(self.g(embed_tiles(net, shuffled)), dim=1)

    def forward(self, net: EmbeddingNet, batch: dict) -> tuple[torch.Tensor, dict]:
        c = self.cfg
        index = batch["index"].to(self.bank.device)
        image, tiles = self.represent(net, batch["frames"], self.augment)
        negatives = self.bank[torch.randint(len(self.bank), (len(index), c.negatives), device=index.device)]
        positives = self.bank[index]
        loss = c.loss_weight * self.loss_tiles(tiles, positives, negatives) + (1 - c.loss_weight) * self.loss_image(image, positives, negatives)
        self.update_bank(distributed.gather(index), distributed.gather(image.detach()))
        return loss, {"frames": len(index) * (1 + c.tiles.grid**2)}

    @torch.no_grad()
    def update_bank(self, index: torch.Tensor, image: torch.Tensor) -> None:
        """bank[i] <- normalize(momentum bank[i] + (1 - momentum) f(v_I)) for the rows ``index`` (N,)."""
        m = self.cfg.momentum
        self.bank[index] = F.normalize(m * self.bank[index] + (1 - m) * image.to(self.bank.dtype), dim=1)

    @torch.no_grad()
    def validate(self, net: EmbeddingNet, episodes: list[np.ndarray], rng: np.random.Generator) -> dict:
        """Tiles against images on held-out frames (at least 5 steps apart within a view), in batches of
        ``pirl.batch_size``: how often a frame's tile representation is nearest its own image's."""
        g = torch.Generator(device=self.bank.device).manual_seed(int(rng.integers(2**31)))
        frames = sample_frames(episodes, self.val_items, rng, spacing=5)
        hits, items, chance = 0, 0, 0.0
        with as_in_training(net):
            for chunk in frames.split(self.cfg.batch_size):
                if len(chunk) < 2:
                    continue
                image, tiles = self.represent(net, chunk, generator=g)
                hits += int(((tiles @ image.T).argmax(1) == torch.arange(len(chunk), device=image.device)).sum())
                items, chance = items + len(chunk), chance + 1.0
        return {"pretext_error": 1.0 - hits / items, "pretext_chance_error": 1.0 - chance / items, "pretext_items": items}
