"""What ``evaluate`` can measure: a trained checkpoint, or a baseline with no training."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import UserError
from ..checkpoint import load_embedder
from ..runs import checkpoint_spec
from ..config import ModelConfig
from ..models import EmbeddingNet

BASELINES = ("random", "pixels")


class Encoder:
    """``name`` and ``__call__(frames uint8 (N, H, W, 3)) -> (N, D) float32``."""

    def __init__(self, name: str, fn) -> None:
        self.name, self.fn = name, fn

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return self.fn(frames)


def checkpoint_encoder(spec: str, device: torch.device) -> Encoder:
    """``PATH`` or ``NAME=PATH``; the name defaults to the run folder's name."""
    name, path = checkpoint_spec(spec)
    if not name:
        name = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
    net = load_embedder(path, device)
    return Encoder(name, lambda frames: net.embed(frames).numpy())


def baseline_encoder(kind: str, model: ModelConfig, seed: int, device: torch.device, pixels: int = 16) -> Encoder:
    """``random``: the architecture of ``model`` at its seeded initialization (no training);
    ``pixels``: frames downsampled to ``pixels`` x ``pixels`` by area averaging, flattened."""
    if kind == "random":
        torch.manual_seed(seed)
        net = EmbeddingNet(ModelConfig(**{**model.__dict__, "pretrained": ""})).to(device).eval()
        return Encoder("random init", lambda frames: net.embed(frames).numpy())
    if kind == "pixels":
        def fn(frames: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float() / 255.0
            return F.adaptive_avg_pool2d(x, pixels).flatten(1).numpy()

        return Encoder(f"pixels {pixels}x{pixels}", fn)
    raise UserError(f"--baseline must be one of {', '.join(BASELINES)}, got {kind!r}")
