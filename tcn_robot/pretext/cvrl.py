"""CVRL (Qian et al. 2020): two clips of one video (the gap between their starts drawn from a linearly
decreasing density), each augmented consistently over its frames (one crop, one colour jitter per
clip), through a clip encoder (the shared per-frame network and a temporal convolution over the clip,
``EmbeddingNet.window``), an MLP projector and InfoNCE over the 2N clips (temperature 0.1, negatives
gathered from every rank). A frame's embedding downstream is that of the clip ending at it (causal).
"""
from __future__ import annotations

from dataclasses import replace

import kornia.augmentation as K
import numpy as np
import torch
from torch import nn

from .. import UserError, distributed
from ..config import Config
from ..data.cache import FrameCache
from ..data.datasets import Batches
from ..losses import InfoNCELoss
from ..models import EmbeddingNet
from ..train.method import Method, as_in_training, mlp


def linear_gap(max_gap: int, rng: np.random.Generator, size=None):
    """Gaps in 0..max_gap drawn with probability proportional to max_gap + 1 - gap: a linearly
    decreasing density, so that nearby clips are the likeliest pairs (CVRL, Qian et al. 2020)."""
    gaps = np.arange(max_gap + 1)
    weights = (max_gap + 1 - gaps).astype(float)
    return rng.choice(gaps, size=size, p=weights / weights.sum())


def clip_pair_starts(frames: int, span: int, max_gap: int, rng: np.random.Generator) -> list[int]:
    """The starts of CVRL's two clips of ``span`` frames in a video of ``frames`` frames, the gap between
    them drawn by ``linear_gap`` (up to ``max_gap``; 0: as far as the video allows), in random order."""
    room = frames - span  # the latest start of a clip
    gap = int(linear_gap(min(room, max_gap) if max_gap else room, rng))
    first = int(rng.integers(room - gap + 1))
    return [first, first + gap] if rng.random() < 0.5 else [first + gap, first]


class ClipPairBatches(Batches):
    """CVRL's pairs: two clips of ``length`` frames ``stride`` apart from one view of one episode, the
    starts drawn by ``clip_pair_starts``.

    Yields: clips (B, 2, length, H, W, 3) uint8; episode, view, start (B, 2) int64 (start of each clip).
    """

    def __init__(self, cache: FrameCache, batch_size: int, length: int, stride: int, max_gap: int = 0,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(cache, seed, rank, world_size)
        self.batch_size, self.length, self.stride, self.max_gap = batch_size, length, stride, max_gap
        self.span = (length - 1) * stride + 1
        short = [cache.episodes[i].name for i in self.episodes if cache.arrays[i].shape[0] < self.span]
        if short:
            raise UserError(f"{cache.dataset_root}: episode {short[0]} is shorter than one clip ({self.span} frames)")

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        clips, eps, views, starts = [], [], [], []
        for e in rng.choice(self.episodes, self.batch_size):
            arr = self.cache.arrays[e]
            pair = clip_pair_starts(arr.shape[0], self.span, self.max_gap, rng)
            v = int(rng.integers(arr.shape[1]))
            clips.append(np.stack([arr[s : s + self.span : self.stride, v] for s in pair]))
            eps.append([e, e])
            views.append([v, v])
            starts.append(pair)
        return {"clips": torch.from_numpy(np.stack(clips)), "episode": torch.tensor(eps), "view": torch.tensor(views),
                "start": torch.tensor(starts)}


class CVRL(Method):
    name = "cvrl"
    gathers = True
    val_items = 128

    @staticmethod
    def configure(cfg: Config) -> Config:
        c = cfg.cvrl
        return replace(cfg, model=replace(cfg.model, context=c.clip_length, context_stride=c.stride))

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        c = self.cfg = cfg.cvrl
        size, s = cfg.model.image_size, c.jitter_strength
        self.clip_augment = K.VideoSequential(  # the same parameters for every frame of a clip
            K.RandomResizedCrop((size, size), scale=tuple(c.crop_scale)),
            K.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, p=c.jitter_prob),
            K.RandomGrayscale(p=c.grayscale_prob),
            data_format="BTCHW", same_on_frame=True)
        self.projector = mlp(cfg.model.embedding_dim, c.projector_hidden, c.projector_dim, batch_norm=True)
        self.loss_fn = InfoNCELoss(c.temperature, exclude_self=True, gather=True)

    def source(self, data, seed: int, rank: int, world: int):
        c = self.cfg
        return ClipPairBatches(data, c.batch_size, c.clip_length, c.stride, c.max_gap, seed, rank, world)

    def project(self, net: EmbeddingNet, clips: torch.Tensor, augment: bool = True) -> torch.Tensor:
        """Clips (B, T, H, W, 3) uint8 -> projections (B, projector_dim) of their clip embeddings."""
        b, t = clips.shape[:2]
        x = net.to_unit(clips.flatten(0, 1)).unflatten(0, (b, t))
        if augment:
            x = self.clip_augment(x)
        raw = net.raw(net.normalize(x.flatten(0, 1))).view(b, t, -1)
        return self.projector(net.window(raw))

    def forward(self, net: EmbeddingNet, batch: dict) -> tuple[torch.Tensor, dict]:
        clips = batch["clips"]  # (B, 2, T, H, W, 3)
        b = len(clips)
        z = self.project(net, torch.cat([clips[:, 0], clips[:, 1]]))
        labels = (torch.arange(b, device=z.device) + distributed.rank() * b).repeat(2)
        return self.loss_fn(z, z, labels, labels), {"frames": int(2 * b * clips.shape[2])}

    @torch.no_grad()
    def validate(self, net: EmbeddingNet, episodes: list[np.ndarray], rng: np.random.Generator) -> dict:
        """The training task on held-out episodes, each batch drawing its clip pairs from different
        (episode, view) videos: how often a clip's nearest other clip (projections, cosine) is its twin."""
        c = self.cfg
        span = (c.clip_length - 1) * c.stride + 1
        videos = [(e, v) for e, a in enumerate(episodes) if a.shape[0] >= span for v in range(a.shape[1])]
        hits, items, chance = 0, 0, 0.0
        with torch.random.fork_rng(devices=[]), as_in_training(net), as_in_training(self):
            torch.manual_seed(int(rng.integers(2**31)))
            while items < self.val_items and len(videos) >= 2:
                pick = rng.choice(len(videos), min(c.batch_size, len(videos)), replace=False)
                pairs = []
                for e, v in (videos[i] for i in pick):
                    starts = clip_pair_starts(episodes[e].shape[0], span, c.max_gap, rng)
                    pairs.append([episodes[e][s : s + span : c.stride, v] for s in starts])
                clips = torch.from_numpy(np.array(pairs))
                z = nn.functional.normalize(self.project(net, torch.cat([clips[:, 0], clips[:, 1]])), dim=1)
                sim = (z @ z.T).fill_diagonal_(-2.0)
                hits += int((sim.argmax(1) == torch.arange(len(z), device=z.device).roll(len(clips))).sum())
                items, chance = items + len(z), chance + len(z) / (len(z) - 1)
        return {"pretext_error": 1.0 - hits / items, "pretext_chance_error": 1.0 - chance / items, "pretext_items": items}
