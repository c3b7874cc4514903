"""Batched augmentation on the training device (kornia): random resized crop, optional mirror image,
perspective warp and rotation (viewpoints the rig never had), and colour jitter, per image or the
same for every frame of a clip.

Applied to [0, 1] images (B, 3, S, S) between ``EmbeddingNet.to_unit`` and ``normalize``; every
image of a batch gets its own random parameters, drawn from torch's global generator (so a
checkpoint that saves torch's RNG state resumes the same augmentations).
"""
from __future__ import annotations

import kornia.augmentation as K
from torch import nn

from ..config import AugmentConfig


def _augmentations(cfg: AugmentConfig, size: int) -> list[nn.Module]:
    views = ([K.RandomHorizontalFlip(p=cfg.hflip)] if cfg.hflip > 0 else []) + (
        [K.RandomPerspective(cfg.perspective, p=0.5)] if cfg.perspective > 0 else []) + (
        [K.RandomRotation(cfg.rotate_deg, p=0.5)] if cfg.rotate_deg > 0 else [])
    return [K.RandomResizedCrop((size, size), scale=tuple(cfg.crop_scale), ratio=tuple(cfg.crop_ratio)), *views,
            K.ColorJitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue, p=cfg.jitter_prob)]


def build_augment(cfg: AugmentConfig, size: int) -> nn.Module:
    """The augmentation of single images (B, 3, S, S), or the identity when disabled."""
    return nn.Sequential(*_augmentations(cfg, size)) if cfg.enabled else nn.Identity()


def build_clip_augment(cfg: AugmentConfig, size: int) -> nn.Module:
    """The same augmentation for clips (B, T, 3, S, S): one crop and one colour jitter per clip, the
    same for all its frames (kornia's ``VideoSequential``), so that what changes between a clip's
    frames is the video's own motion."""
    if not cfg.enabled:
        return nn.Identity()
    return K.VideoSequential(*_augmentations(cfg, size), data_format="BTCHW", same_on_frame=True)
