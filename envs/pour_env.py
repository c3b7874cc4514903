"""The gymnasium environment: the robot pours from the cup into the bowl by task-space control.

Action: Box [-1, 1]^k of deltas of the commanded cup grasp centre (axes from ``x``, ``y``, ``z``)
and tilt, scaled by ``max_delta_pos`` / ``max_delta_tilt`` and clamped to the workspace; executed
by IK at 20 Hz over 240 Hz physics. Observation (``obs_type="state"``): float32 vector
``[joint angles (7), cup centre (3), cup quaternion (4), tilt (1), centre x, y of each receptacle
(2 per receptacle: bowl, then jar), t / T (1)]``; ``obs_type="pixels"`` gives a Dict of per-camera
uint8 images ``view{k}`` (S, S, 3) plus ``state``. Episodes last ``episode_steps`` control steps
and then terminate (time is part of the state). The behaviour the reward asks for is
``config.behaviour``, or ``reset(options={"behaviour": name})`` for one episode.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .behaviours import BEHAVIOURS, SCENES, check_behaviour, performed
from .config import PourConfig, make_pour_config
from .robot import NUM_JOINTS, Robot
from .task import Measurement, PouringWorld

OBS_TYPES = ("state", "pixels")


class PourEnv(gym.Env):
    """Pour particles from a cup into a bowl.

    Args:
        config: a ``PourConfig`` or dict; keyword ``overrides`` are applied on top.
        obs_type: ``"state"`` or ``"pixels"``.
        render_mode: ``None`` or ``"rgb_array"`` (the agent view).
        embodiment: ``"robot"`` for control through ``step``; ``"human"`` builds the hand for the
            scripted human-proxy demonstrator, which moves it with ``drive`` (``step`` refuses).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        config: PourConfig | dict | None = None,
        obs_type: str = "state",
        render_mode: str | None = None,
        embodiment: str = "robot",
        **overrides: Any,
    ) -> None:
        if obs_type not in OBS_TYPES:
            raise ValueError(f"obs_type must be one of {OBS_TYPES}, got {obs_type!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.cfg = make_pour_config(config, **overrides)
        self.obs_type = obs_type
        self.render_mode = render_mode
        self.embodiment = embodiment
        self.world = PouringWorld(self.cfg, embodiment)
        self.metadata = {**self.metadata, "render_fps": int(round(self.cfg.physics_hz / self.cfg.substeps))}
        self.action_space = spaces.Box(-1.0, 1.0, (len(self.cfg.action_axes),), np.float32)
        receptacles = len(SCENES[self.cfg.scene])
        high = np.array([np.pi] * NUM_JOINTS + [5.0] * 3 + [1.0] * 4 + [np.pi] + [5.0] * 2 * receptacles + [1.0], np.float32)
        low = -high
        low[-1] = 0.0
        state = spaces.Box(low, high, dtype=np.float32)
        if obs_type == "state":
            self.observation_space = state
        else:
            s = self.cfg.image_size
            views = {f"view{k}": spaces.Box(0, 255, (s, s, 3), np.uint8) for k in range(len(self.cfg.cameras))}
            self.observation_space = spaces.Dict({**views, "state": state})
        self.t = 0
        self.target_center = np.zeros(3)
        self.target_tilt = 0.0
        self.measurement: Measurement | None = None

    # ----------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        behaviour = (options or {}).get("behaviour", self.cfg.behaviour)
        check_behaviour(self.cfg.scene, behaviour)
        self.world.behaviour = BEHAVIOURS[behaviour]
        self.world.build(self.np_random)
        self.t = 0
        self.measurement = self.world.measure()
        self.target_center = self.measurement.cup_center.copy()
        self.target_tilt = 0.0
        return self._obs(), self._info()

    def step(self, action):
        if self.embodiment != "robot":
            raise RuntimeError("step() drives the robot; a human-proxy episode moves the hand with drive()")
        cfg = self.cfg
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        center = self.target_center.copy()
        tilt = self.target_tilt
        for axis, v in zip(cfg.action_axes, a):
            if axis == "tilt":
                tilt += v * cfg.max_delta_tilt
            else:
                center["xyz".index(axis)] += v * cfg.max_delta_pos
        return self.drive(center, tilt)

    def drive(self, center: np.ndarray, tilt: float):
        """Move the holder's grasp centre to ``center`` (3,) and tilt to ``tilt`` over one control
        step (clamped to the workspace) and return the ``step`` tuple."""
        cfg = self.cfg
        self.target_center = np.array(
            [
                np.clip(center[0], *cfg.x_limits),
                np.clip(center[1], *cfg.y_limits),
                np.clip(center[2], self.world.rest_height, cfg.z_max),
            ]
        )
        self.target_tilt = float(np.clip(tilt, *cfg.tilt_limits))
        self.world.holder.command(self.target_center, self.target_tilt)
        self.world.control_step()
        self.t += 1
        self.measurement = self.world.measure()
        reward = self.world.reward(self.measurement)
        terminated = self.t >= cfg.episode_steps
        return self._obs(), float(reward), terminated, False, self._info()

    def render(self):
        if self.render_mode == "rgb_array":
            return self.world.render([self.cfg.agent_view])[0]
        return None

    def render_views(self) -> list[np.ndarray]:
        """Every camera of the rig at the current instant, as (S, S, 3) uint8 arrays."""
        return self.world.render()

    def close(self) -> None:
        self.world.close()

    # ----------------------------------------------------------------- helpers
    def action_for(self, center: np.ndarray, tilt: float) -> np.ndarray:
        """The action (unclipped) that moves the commanded pose to (``center``, ``tilt``)."""
        cfg = self.cfg
        out = []
        for axis in cfg.action_axes:
            if axis == "tilt":
                out.append((tilt - self.target_tilt) / cfg.max_delta_tilt)
            else:
                i = "xyz".index(axis)
                out.append((center[i] - self.target_center[i]) / cfg.max_delta_pos)
        return np.asarray(out, dtype=np.float32)

    def state_vector(self) -> np.ndarray:
        m = self.measurement
        holder = self.world.holder
        joints = holder.joint_angles() if isinstance(holder, Robot) else np.zeros(NUM_JOINTS)
        return np.concatenate(
            [joints, m.cup_center, m.cup_quat, [m.tilt], *(pos[:2] for pos, _, _ in self.world.receptacles.values()),
             [self.t / self.cfg.episode_steps]]
        ).astype(np.float32)

    def _obs(self):
        state = self.state_vector()
        if self.obs_type == "state":
            return state
        frames = self.world.render()
        return {**{f"view{k}": f for k, f in enumerate(frames)}, "state": state}

    def _info(self) -> dict:
        m = self.measurement
        score = self.world.behaviour.score(m.fractions)
        info = {**m.info(), "behaviour": self.world.behaviour.name, "goal_score": score,
                "behaviour_performed": performed(m.fractions, self.cfg.scene), "is_success": score >= self.cfg.success_fraction}
        if self.cfg.views_in_info:
            info["views"] = self.world.render()
        return info
