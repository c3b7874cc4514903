"""What a training method is (after solo-learn's ``BaseMethod``): a module with its own parameters
(heads, projectors) and buffers (memory banks), a batch source and a loss, for the shared network.

The engine moves, wraps (DDP), optimizes and checkpoints the network and the method together: the
method's ``forward(net, batch)`` runs inside the wrapped module's forward, so its heads get their
gradients synchronized across ranks like the network's.
"""
from __future__ import annotations

import contextlib

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
    val_items = 0  # how many pseudo-labels ``validate`` scores at most

    @staticmethod
    def configure(cfg):
        """The run's config as this method needs it (CVRL: the network's clip length); saved with the run."""
        return cfg

    def source(self, data, seed: int, rank: int, world: int):
        """An object whose ``sample(rng)`` draws one batch from the training episodes ``data``."""
        raise NotImplementedError

    def forward(self, net: EmbeddingNet, batch: dict) -> tuple[torch.Tensor, dict]:
        """(loss, logs): logs are floats for TensorBoard, with ``frames``, the images the network saw."""
        raise NotImplementedError

    @staticmethod
    @torch.no_grad()
    def track_statistics(net: EmbeddingNet, frames: torch.Tensor, augment: nn.Module | None = None) -> None:
        """A pass of whole frames that only updates the network's batch-norm running statistics: for a
        method whose network sees tiles or patches only (under ``frozen_bn_statistics``)."""
        net.raw(Method.inputs(net, frames, augment))

    @staticmethod
    def inputs(net: EmbeddingNet, frames: torch.Tensor, augment: nn.Module | None = None) -> torch.Tensor:
        """uint8 frames (B, H, W, 3) -> the network's input (B, 3, S, S) on its device, augmented by
        ``augment`` (on [0, 1] images) when given: the training counterpart of ``net.preprocess``."""
        x = net.to_unit(frames)
        return net.normalize(augment(x) if augment is not None else x)

    @torch.no_grad()
    def validate(self, net: EmbeddingNet, episodes: list[np.ndarray], rng: np.random.Generator) -> dict:
        """Pretext figures on held-out episodes, each (T, V, H, W, 3) uint8: ``pretext_error`` (lower is
        better), ``pretext_chance_error`` and ``pretext_items`` (how many pseudo-labels were scored);
        {} for a method without a pretext task of its own."""
        return {}


@contextlib.contextmanager
def frozen_bn_statistics(net: nn.Module):
    """Within the block, batch norm layers normalize with the batch's statistics as usual but leave
    their running statistics alone. The running statistics are what the network uses downstream
    (evaluation, rewards) on whole frames, so passes of tiles and patches must not shift them."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


@contextlib.contextmanager
def running_bn_statistics(net: nn.Module):
    """Within the block, batch norm layers normalize with their running statistics, as in evaluation,
    while the rest of the network trains: each frame's embedding then depends on that frame alone, not
    on the others of its batch (through which a future frame would leak into a context; CPC)."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    was = [m.training for m in norms]
    for m in norms:
        m.eval()
    try:
        yield
    finally:
        for m, training in zip(norms, was):
            m.train(training)


@contextlib.contextmanager
def as_in_training(net: nn.Module):
    """Within the block, ``net`` computes as it does in training (batch statistics), without changing
    its running statistics: a pretext task is validated with the function it was trained as."""
    was = net.training
    net.train()
    try:
        with frozen_bn_statistics(net):
            yield
    finally:
        net.train(was)


def mlp(dim_in: int, hidden: int, dim_out: int, batch_norm: bool = False) -> nn.Module:
    """A method's head: Linear (BN) ReLU Linear, or one Linear layer when ``hidden`` is 0."""
    if hidden <= 0:
        return nn.Linear(dim_in, dim_out)
    norm = [nn.BatchNorm1d(hidden)] if batch_norm else []
    return nn.Sequential(nn.Linear(dim_in, hidden), *norm, nn.ReLU(inplace=True), nn.Linear(hidden, dim_out))


def sample_frames(episodes: list[np.ndarray], count: int, rng: np.random.Generator, spacing: int = 0) -> torch.Tensor:
    """Up to ``count`` frames (N, H, W, 3) uint8 drawn uniformly from the (episode, time, view)s of
    ``episodes``, each (T, V, H, W, 3): the held-out frames a method validates on. With ``spacing``,
    no two frames of one view of one episode lie closer than that many steps (fewer than ``count``
    when the episodes hold fewer such frames): instance retrieval then has no near-duplicates."""
    picks, taken = [], {}
    for _ in range(50 * count):
        if len(picks) == count:
            break
        e = int(rng.integers(len(episodes)))
        a = episodes[e]
        t, v = int(rng.integers(a.shape[0])), int(rng.integers(a.shape[1]))
        near = taken.setdefault((e, v), [])
        if spacing and any(abs(t - u) < spacing for u in near):
            continue
        near.append(t)
        picks.append(a[t, v])
    return torch.from_numpy(np.stack(picks))


class Objective(nn.Module):
    """The network and the method as one module: what the engine moves, wraps and optimizes."""

    def __init__(self, net: EmbeddingNet, method: Method) -> None:
        super().__init__()
        self.net, self.method = net, method

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        return self.method(self.net, batch)
