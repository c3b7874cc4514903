"""Scripted probes of a reward: the robot replays the demo's own cup path in the demo's own scene at
its pace, 0.7x and 1.4x as fast, and started at once, and does what a reward must score below any
pour: carries the cup upright along the same path, pours past the bowl or just short of it (a spill
beside it), or stands still. A good reward ranks every pour, at any pace, above every non-pour.

The demo is a recorded human-proxy episode: its ``states.npz`` gives the cup's centre and tilt per
frame and its ``meta.json`` the seed of its scene, which a robot ``PourEnv`` rebuilds (as paired
twins are recorded). Each probe is an episode of the robot's agent view, with its final fraction
in the bowl (ground truth).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import UserError
from ..data.episodes import load_episode
from ..envs import PourConfig, PourEnv

POURS = ("pour at the demo's pace", "pour 0.7x as fast", "pour 1.4x as fast", "pour started at once")
OTHERS = ("upright carry along the pour's path", "pour past the bowl", "spill beside the bowl", "stand still")
PROBES = POURS + OTHERS
MOVED = 0.005  # metres the cup must move from its start for the demo's pour to have begun


@dataclass
class Probe:
    name: str
    frames: np.ndarray  # (T + 1, H, W, 3) the agent view after reset and after every step
    fraction_in_bowl: float


def demo_path(demo: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """The demo's cup centre (T_d, 3) and tilt (T_d,) per frame and the seed of its scene."""
    ep = load_episode(demo)
    states = ep.states()
    if states is None or "seed" not in ep.meta or ep.meta.get("embodiment") != "human":
        raise UserError(f"{ep.path}: the reward probes need a recorded human-proxy demo (its states and scene seed)")
    return np.asarray(states["cup_position"], np.float64), np.asarray(states["tilt"], np.float64), int(ep.meta["seed"])


def _resample(path: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``path`` (T_d, k) at fractional frame ``times`` (n,), linearly interpolated, held at its ends."""
    times = np.clip(times, 0, len(path) - 1)
    low = np.floor(times).astype(int)
    high = np.minimum(low + 1, len(path) - 1)
    w = (times - low)[:, None]
    return path[low] * (1 - w) + path[high] * w


def plans(cup: np.ndarray, tilt: np.ndarray, steps: int, pour_x: float, cfg: PourConfig, bowl_x: float) -> dict[str, np.ndarray]:
    """The cup pose [x, y, z, tilt] to command at steps 1..steps of each probe, from the demo's path."""
    path = np.concatenate([cup, tilt[:, None]], 1)
    t = np.arange(1, steps + 1, dtype=np.float64)
    begun = int(np.argmax(np.linalg.norm(cup - cup[0], axis=1) > MOVED))
    out = {
        "pour at the demo's pace": _resample(path, t),
        "pour 0.7x as fast": _resample(path, 0.7 * t),
        "pour 1.4x as fast": _resample(path, 1.4 * t),
        "pour started at once": _resample(path, t + begun),
    }
    upright = out["pour at the demo's pace"].copy()
    upright[:, 3] = 0.0
    out["upright carry along the pour's path"] = upright
    start_x = cup[0, 0]
    toward = np.clip((out["pour at the demo's pace"][:, 0] - start_x) / max(pour_x - start_x, 1e-6), 0.0, 1.0)  # 0 at the start, 1 at the pour
    past = out["pour at the demo's pace"].copy()
    past[:, 0] += toward * (cfg.x_limits[1] - pour_x)
    out["pour past the bowl"] = past
    beside = out["pour at the demo's pace"].copy()
    beside[:, 0] += toward * (bowl_x - cfg.bowl_radius - 0.16 - pour_x)  # the stream lands just short of the near rim
    out["spill beside the bowl"] = beside
    out["stand still"] = np.repeat(path[:1], steps, 0)
    return out


def run_probes(env_cfg: PourConfig, demo: str | Path) -> list[Probe]:
    """Every probe of ``PROBES``, played by the robot in the demo's scene (``env_cfg``'s world)."""
    cup, tilt, seed = demo_path(demo)
    env = PourEnv(replace(env_cfg, views_in_info=False), render_mode="rgb_array")
    try:
        env.reset(seed=seed)
        pour_x, bowl_x = float(env.world.pour_point()[0]), float(env.world.bowl_pos[0])
        probes = []
        for name, plan in plans(cup, tilt, env_cfg.episode_steps, pour_x, env_cfg, bowl_x).items():
            env.reset(seed=seed)
            frames = [env.render()]
            for pose in plan:
                env.step(np.clip(env.action_for(pose[:3], pose[3]), -1, 1).astype(np.float32))
                frames.append(env.render())
            probes.append(Probe(name, np.stack(frames), float(env.measurement.in_bowl)))
        return probes
    finally:
        env.close()


def probe_ranking(returns: dict[str, float]) -> dict:
    """The probes' returns under one reward, and whether every pour (``POURS``) scores above every other
    probe: ``pours_above_others`` and the ``margin`` (lowest pour minus highest non-pour, in units of the
    spread of all the returns; positive when the pours come first)."""
    pours = [returns[n] for n in POURS if n in returns]
    others = [returns[n] for n in OTHERS if n in returns]
    spread = max(returns.values()) - min(returns.values())
    margin = (min(pours) - max(others)) / spread if spread > 0 else 0.0
    return {"probe_returns": returns, "pours_above_others": bool(min(pours) > max(others)), "margin": float(margin)}
