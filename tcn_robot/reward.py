"""Rewards from an embedding: the TCN paper's time-indexed reward and XIRL's goal distance.

TCN (Sermanet et al. 2017, Sec. V-C): R(v_t, w_t) = -a ||w_t - v_t||^2 - b sqrt(g + ||w_t - v_t||^2),
v_t the embedding of demonstration frame t, w_t that of the robot's frame at step t. The squared
term shapes from afar, the Huber-like root term sharpens near the demonstration. Defaults
a = b = 0.5, g = 1e-3 (as third-party TCN reproductions use; the paper gives none).

Time alignment: an episode of T steps and a demo of T_d frames are matched by linear rescaling,
episode step t <-> demo frame round(t (T_d - 1) / (T - 1)).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class RewardConfig:
    """``reward.*``: which reward and its constants."""

    kind: str = "tcn"  # tcn | goal | env
    a: float = 0.5
    b: float = 0.5
    g: float = 1e-3


def demo_index(t, episode_steps: int, demo_frames: int):
    """Demo frame matched to episode step ``t`` (int or array) by linear time rescaling."""
    if episode_steps <= 1:
        return np.zeros_like(np.asarray(t))
    return np.rint(np.asarray(t) * (demo_frames - 1) / (episode_steps - 1)).astype(int)


def tcn_reward(w, v, a: float = 0.5, b: float = 0.5, g: float = 1e-3):
    """R = -a d^2 - b sqrt(g + d^2), d = ||w - v||; w, v (..., D) tensors or arrays."""
    w, v = torch.as_tensor(w, dtype=torch.float64), torch.as_tensor(v, dtype=torch.float64)
    d2 = ((w - v) ** 2).sum(-1)
    return -a * d2 - b * torch.sqrt(g + d2)


def goal_reward(w, goal, scale: float):
    """XIRL (Zakka et al. 2021): -||w - goal|| / scale, ``scale`` the mean start-to-goal distance."""
    w, goal = torch.as_tensor(w, dtype=torch.float64), torch.as_tensor(goal, dtype=torch.float64)
    return -torch.linalg.norm(w - goal, dim=-1) / scale


def episode_tcn_rewards(episode_emb, demo_emb, cfg: RewardConfig) -> np.ndarray:
    """Per-step TCN reward of an episode's embeddings (T, D) against a demo's (T_d, D)."""
    idx = demo_index(np.arange(len(episode_emb)), len(episode_emb), len(demo_emb))
    return tcn_reward(np.asarray(episode_emb), np.asarray(demo_emb)[idx], cfg.a, cfg.b, cfg.g).numpy()
