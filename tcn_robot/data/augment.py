"""Batched augmentation on the training device (kornia): random resized crop and colour jitter.

Applied to [0, 1] images (B, 3, S, S) between ``EmbeddingNet.to_unit`` and ``normalize``; every
image of a batch gets its own random parameters, drawn from torch's global generator (so a
checkpoint that saves torch's RNG state resumes the same augmentations).
"""
from __future__ import annotations

import kornia.augmentation as K
from torch import nn

from ..config import AugmentConfig


def build_augment(cfg: AugmentConfig, size: int) -> nn.Module:
    """The augmentation module, or the identity when disabled."""
    if not cfg.enabled:
        return nn.Identity()
    return nn.Sequential(
        K.RandomResizedCrop((size, size), scale=tuple(cfg.crop_scale), ratio=tuple(cfg.crop_ratio)),
        K.ColorJitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue, p=cfg.jitter_prob),
    )
