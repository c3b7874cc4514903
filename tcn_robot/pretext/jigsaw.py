"""Jigsaw puzzles (Noroozi & Favaro 2016): a frame's 3x3 tiles (each cropped at random inside its
cell, normalized by its own mean and std, the frame sometimes in grayscale) go through the shared
network in the order of one of P fixed permutations; a classifier on their concatenated embeddings
names the permutation. The network's batch-norm running statistics come from whole frames (a
statistics-only pass each step), so that its embedding of frames downstream is well defined. The permutation set (greedy maximal Hamming distance from a seed) is a buffer,
saved in every checkpoint.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Config
from ..data.datasets import FrameBatches
from ..methods import TileSection
from ..models import EmbeddingNet
from ..train.method import Method, as_in_training, frozen_bn_statistics, mlp, sample_frames
from .transforms import grayscale, greedy_permutations, resize, shuffle_tiles, standardize, tile_crops


def puzzle_tiles(net: EmbeddingNet, frames: torch.Tensor, c: TileSection, generator=None) -> torch.Tensor:
    """uint8 frames (B, H, W, 3) -> their ``grid`` x ``grid`` tiles (B, K, 3, tile_size, tile_size),
    in cell order, each standardized: the network's input for a puzzle."""
    x = grayscale(net.to_unit(frames), c.grayscale_prob, generator)
    tiles, _ = tile_crops(x, c.grid, c.tile_fraction, generator)
    return standardize(resize(tiles, c.tile_size))


def embed_tiles(net: EmbeddingNet, tiles: torch.Tensor) -> torch.Tensor:
    """Tiles (B, K, 3, t, t) -> their embeddings concatenated in tile order (B, K * D); the network's
    running batch-norm statistics stay those of whole frames."""
    b, k = tiles.shape[:2]
    with frozen_bn_statistics(net):
        z = net.raw(tiles.flatten(0, 1).contiguous(memory_format=torch.channels_last))
    return z.view(b, -1)


class Jigsaw(Method):
    name = "jigsaw"
    val_items = 128

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        c = self.cfg = cfg.jigsaw
        k = c.tiles.grid**2
        self.register_buffer("permutations", torch.from_numpy(greedy_permutations(c.permutations, k, c.permutation_seed)))
        self.head = mlp(k * cfg.model.embedding_dim, c.head_hidden, c.permutations)

    def source(self, data, seed: int, rank: int, world: int):
        return FrameBatches(data, self.cfg.batch_size, seed, rank, world)

    def logits(self, net: EmbeddingNet, frames: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        shuffled, labels = shuffle_tiles(puzzle_tiles(net, frames, self.cfg.tiles, generator), self.permutations, generator)
        return self.head(embed_tiles(net, shuffled)), labels

    def forward(self, net: EmbeddingNet, batch: dict) -> tuple[torch.Tensor, dict]:
        self.track_statistics(net, batch["frames"])
        logits, labels = self.logits(net, batch["frames"])
        accuracy = (logits.argmax(1) == labels).float().mean().item()
        return F.cross_entropy(logits, labels), {"frames": len(labels) * self.cfg.tiles.grid**2, "pretext_accuracy": accuracy}

    @torch.no_grad()
    def validate(self, net: EmbeddingNet, episodes: list[np.ndarray], rng: np.random.Generator) -> dict:
        g = torch.Generator(device=self.permutations.device).manual_seed(int(rng.integers(2**31)))
        with as_in_training(net):
            logits, labels = self.logits(net, sample_frames(episodes, self.val_items, rng), g)
        error = 1.0 - (logits.argmax(1) == labels).float().mean().item()
        return {"pretext_error": error, "pretext_chance_error": 1.0 - 1.0 / len(self.permutations), "pretext_items": len(labels)}
