"""SimCLR (Chen et al. 2020): two augmented views of every frame; an MLP projector on the
embedding; NT-Xent over the 2N views, negatives gathered from every rank with gradients.
Downstream (evaluation, reward) uses the embedding below the projector.
"""
from __future__ import annotations

import kornia.augmentation as K
import numpy as np
import torch
from torch import nn

from .. import distributed
from ..config import Config
from ..data.datasets import FrameBatches
from ..losses import InfoNCELoss
from ..models import EmbeddingNet
from ..train.method import Method, as_in_training, mlp, sample_frames


class SimCLR(Method):
    name = "simclr"
    gathers = True
    val_items = 256

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        c = self.cfg = cfg.simclr
        size = cfg.model.image_size
        s = c.jitter_strength
        blur = max(3, (size // 10) | 1)  # an odd kernel of about 10% of the image, as the paper's
        self.views = nn.Sequential(
            K.RandomResizedCrop((size, size), scale=tuple(c.crop_scale)),
            K.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, p=c.jitter_prob),
            K.RandomGrayscale(p=c.grayscale_prob),
            K.RandomGaussianBlur((blur, blur), (0.1, 2.0), p=c.blur_prob),
        )
        self.projector = mlp(cfg.model.embedding_dim, c.projector_hidden, c.projector_dim, batch_norm=True)
        self.loss_fn = InfoNCELoss(c.temperature, exclude_self=True, gather=True)

    def source(self, data, seed: int, rank: int, world: int):
        return FrameBatches(data, self.cfg.batch_size, seed, rank, world)

    def project(self, net: EmbeddingNet, frames: torch.Tensor) -> torch.Tensor:
        """Two views of each frame -> their projections (2B, projector_dim), first views first."""
        x = torch.cat([self.inputs(net, frames, self.views), self.inputs(net, frames, self.views)])
        return self.projector(net.raw(x))

    def forward(self, net: EmbeddingNet, batch: dict) -> tuple[torch.Tensor, dict]:
        z = self.project(net, batch["frames"])
        b = len(batch["frames"])
        labels = (torch.arange(b, device=z.device) + distributed.rank() * b).repeat(2)  # unique across ranks
        return self.loss_fn(z, z, labels, labels), {"frames": 2 * b}

    @torch.no_grad()
    def validate(self, net: EmbeddingNet, episodes: list[np.ndarray], rng: np.random.Generator) -> dict:
        """The training task on held-out frames (at least 5 steps apart within a view, no near-duplicates),
        in batches of ``simclr.batch_size``: how often a view's nearest other view of its batch
        (cosine of the projections) is its twin."""
        frames = sample_frames(episodes, self.val_items // 2, rng, spacing=5)
        hits, items, chance = 0, 0, 0.0
        with torch.random.fork_rng(devices=[]), as_in_training(net), as_in_training(self):
            torch.manual_seed(int(rng.integers(2**31)))
            for chunk in frames.split(self.cfg.batch_size):
                if len(chunk) < 2:
                    continue
                z = nn.functional.normalize(self.project(net, chunk), dim=1)
                sim = (z @ z.T).fill_diagonal_(-2.0)
                hits += int((sim.argmax(1) == torch.arange(len(z), device=z.device).roll(len(chunk))).sum())
                items, chance = items + len(z), chance + len(z) / (len(z) - 1)
        return {"pretext_error": 1.0 - hits / items, "pretext_chance_error": 1.0 - chance / items, "pretext_items": items}
