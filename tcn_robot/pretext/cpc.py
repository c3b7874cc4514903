"""Contrastive predictive coding over time (van den Oord et al. 2018; Henaff et al. 2019): the shared
network embeds each frame of a window of one video; a GRU summarizes the embeddings up to step t into
a context c_t; a linear map per step ahead k = 1..K predicts the embedding k frames later, scored by
InfoNCE against every other frame of the batch (other steps of the window, other videos, other ranks).

Batch norm would let a frame's embedding depend on the other frames of its batch, the future ones
among them; here the network normalizes with its running statistics (updated by a statistics-only
pass of the batch's frames first), so that a context depends on no frame after it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import UserError, distributed
from ..config import Config
from ..data.augment import build_clip_augment
from ..data.cache import FrameCache
from ..data.datasets import Batches
from ..losses import InfoNCELoss
from ..models import EmbeddingNet
from ..train.method import Method, as_in_training, running_bn_statistics


class WindowBatches(Batches):
    """CPC's windows: ``length`` frames ``stride`` apart from one view of one episode.

    Yields: windows (B, length, H, W, 3) uint8; episode, view, start (B,) int64.
    """

    def __init__(self, cache: FrameCache, batch_size: int, length: int, stride: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        super().__init__(cache, seed, rank, world_size)
        self.batch_size, self.length, self.stride = batch_size, length, stride
        self.span = (length - 1) * stride + 1
        short = [cache.episodes[i].name for i in self.episodes if cache.arrays[i].shape[0] < self.span]
        if short:
            raise UserError(f"{cache.dataset_root}: episode {short[0]} is shorter than one window ({self.span} frames)")

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        out = {k: [] for k in ("windows", "episode", "view", "start")}
        for e in rng.choice(self.episodes, self.batch_size):
            arr = self.cache.arrays[e]
            s, v = int(rng.integers(arr.shape[0] - self.span + 1)), int(rng.integers(arr.shape[1]))
            for k, x in (("windows", arr[s : s + self.span : self.stride, v]), ("episode", e), ("view", v), ("start", s)):
                out[k].append(x)
        return {"windows": torch.from_numpy(np.stack(out["windows"])),
                **{k: torch.tensor(out[k], dtype=torch.int64) for k in ("episode", "view", "start")}}


def prediction_targets(batch: int, window: int, steps_ahead: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For the predictions of every (window b, step t, k ahead) with t + k inside the window: b, t, k
    (each (P,)), in the order ``CPC.predict`` returns them; the target is frame t + k of window b."""
    rows = [(b, t, k) for k in range(1, steps_ahead + 1) for b in range(batch) for t in range(window - k)]
    return tuple(torch.tensor(col) for col in zip(*rows))


class CPC(Method):
    name = "cpc"
    gathers = True
    val_items = 64

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        c = self.cfg = cfg.cpc
        if c.steps_ahead >= c.window:
            raise ValueError(f"cpc.steps_ahead ({c.steps_ahead}) must be below cpc.window ({c.window})")
        self.augment = build_clip_augment(cfg.augment, cfg.model.image_size)  # one crop per window
        self.gru = nn.GRU(cfg.model.embedding_dim, c.context_dim, batch_first=True)
        self.predictors = nn.ModuleList(nn.Linear(c.context_dim, cfg.model.embedding_dim) for _ in range(c.steps_ahead))
        self.loss_fn = InfoNCELoss(c.temperature, gather=True)

    def source(self, data, seed: int, rank: int, world: int):
        c = self.cfg
        return WindowBatches(data, c.batch_size, c.window, c.stride, seed, rank, world)

    def inputs_of(self, net: EmbeddingNet, windows: torch.Tensor, augment=None) -> torch.Tensor:
        """Windows (B, W, H, W, 3) uint8 -> the network's inputs (B * W, 3, S, S)."""
        b, w = windows.shape[:2]
        x = net.to_unit(windows.flatten(0, 1)).unflatten(0, (b, w))
        return net.normalize((augment(x) if augment is not None else x).flatten(0, 1))

    def encode(self, net: EmbeddingNet, x: torch.Tensor, b: int) -> torch.Tensor:
        """Inputs (B * W, 3, S, S) -> per-frame embeddings (B, W, D), each frame on its own."""
        with running_bn_statistics(net):
            return net.raw(x).view(b, -1, net.cfg.embedding_dim)

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """Per-frame embeddings (B, W, D) -> the predictions of ``prediction_targets`` (P, D)."""
        context, _ = self.gru(z)  # (B, W, C): c_t reads z_0 .. z_t
        w = z.shape[1]
        return torch.cat([self.predictors[k - 1](context[:, : w - k]).flatten(0, 1) for k in range(1, len(self.predictors) + 1)])

    def contrast(self, z: torch.Tensor) -> torch.Tensor:
        """InfoNCE of the predictions from embeddings ``z`` (B, W, D): each against every frame of the batch."""
        b, w = z.shape[:2]
        pb, pt, pk = prediction_targets(b, w, len(self.predictors))
        offset = distributed.rank() * b * w  # frame ids unique across ranks
        target = (pb * w + pt + pk).to(z.device) + offset
        frames = torch.arange(b * w, device=z.device) + offset
        return self.loss_fn(self.predict(z), z.flatten(0, 1), target, frames)

    def forward(self, net: EmbeddingNet, batch: dict) -> tuple[torch.Tensor, dict]:
        windows = batch["windows"]
        x = self.inputs_of(net, windows, self.augment)
        with torch.no_grad():
            net.raw(x)  # a statistics-only pass: the running statistics follow the data
        z = self.encode(net, x, len(windows))
        return self.contrast(z), {"frames": int(windows.shape[0] * windows.shape[1])}

    @torch.no_grad()
    def validate(self, net: EmbeddingNet, episodes: list[np.ndarray], rng: np.random.Generator) -> dict:
        """How often a prediction's nearest frame (cosine) among all frames of its batch of held-out
        windows is its target, over up to 64 windows in batches of ``cpc.batch_size``."""
        c = self.cfg
        span = (c.window - 1) * c.stride + 1
        videos = [(e, v) for e, a in enumerate(episodes) if a.shape[0] >= span for v in range(a.shape[1])]
        hits, items, chance, seen = 0, 0, 0.0, 0
        with as_in_training(net), as_in_training(self):
            while seen < self.val_items and videos:
                batch = []
                for i in rng.choice(len(videos), min(c.batch_size, len(videos)), replace=False):
                    e, v = videos[i]
                    s = int(rng.integers(episodes[e].shape[0] - span + 1))
                    batch.append(episodes[e][s : s + span : c.stride, v])
                windows = torch.from_numpy(np.stack(batch))
                z = self.encode(net, self.inputs_of(net, windows), len(windows))
                b, w = z.shape[:2]
                pb, pt, pk = prediction_targets(b, w, len(self.predictors))
                sim = nn.functional.normalize(self.predict(z), dim=1) @ nn.functional.normalize(z.flatten(0, 1), dim=1).T
                hits += int((sim.argmax(1).cpu() == pb * w + pt + pk).sum())
                items, chance, seen = items + len(pb), chance + len(pb) / (b * w), seen + b
        return {"pretext_error": 1.0 - hits / items, "pretext_chance_error": 1.0 - chance / items, "pretext_items": items}
