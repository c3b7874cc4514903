"""What a training method is (after solo-learn's ``BaseMethod``): a module with its own parameters
(heads, projectors) and buffers (memory banks), a batch source and a loss, for the shared network.

The engine moves, wraps (DDP), optimizes and checkpoints the network and the method together: the
method's ``forward(net, batch)`` runs inside the wrapped module's forward, so its heads get their
gradients synchronized across ranks like the network's.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..models import EmbeddingNet


class Method(nn.Module):
    """Subclasses set ``name`` and implement ``source``, ``forward`` and, optionally, ``validate``.

    ``gathers``: the loss contrasts against rows gathered from every rank, so the engine scales it by
    the world size for DDP's gradient mean to equal the gradient of the global loss.
    """

    name = ""
    gathers = False

    def source(self, data, seed: int, rank: int, world: int):
        """An object whose ``sample(rng)`` draws one batch from the training episodes ``data``."""
        raise NotImplementedError

    def forward(self, net: EmbeddingNet, batch: dict) -> tuple[torch.Tensor, dict]:
        """(loss, logs): logs are floats for TensorBoard, with ``frames``, the images the network saw."""
        raise NotImplementedError

    @staticmethod
    def inputs(net: EmbeddingNet, frames: torch.Tensor, augment: nn.Module | None = None) -> torch.Tensor:
        """uint8 frames (B, H, W, 3) -> the network's input (B, 3, S, S) on its device, augmented by
        ``augment`` (on [0, 1] images) when given: the training counterpart of ``net.preprocess``."""
        x = net.to_unit(frames)
        return net.normalize(augment(x) if augment is not None else x)

    @torch.no_grad()
    def validate(self, net: EmbeddingNet, episodes: list[np.ndarray], rng: np.random.Generator) -> dict:
        """Pretext figures on held-out episodes, each (T, V, H, W, 3) uint8: ``pretext_error`` (lower is
        better) and chance; {} for a method without a pretext task of its own."""
        return {}


class Objective(nn.Module):
    """The network and the method as one module: what the engine moves, wraps and optimizes."""

    def __init__(self, net: EmbeddingNet, method: Method) -> None:
        super().__init__()
        self.net, self.method = net, method

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        return self.method(self.net, batch)
