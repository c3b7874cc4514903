"""Environment construction for RL: the pouring envs as a VecEnv, the frames a learned reward reads,
the embeddings appended to the observation, and the normalized view a trained policy sees."""
from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper, VecNormalize

from ..config import Config
from ..envs import PourEnv
from ..processes import leave_interrupts_to_parent
from ..reward import demo_index
from .policy_io import restore_normalization


class FrameInInfo(gym.Wrapper):
    """Puts the frame the env renders (``render_mode="rgb_array"``) in ``info["frame"]`` after every
    reset and step: rendered in the env's own process, before a VecEnv's auto-reset replaces it."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "frame": self.env.render()}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "frame": self.env.render()}


def make_env(cfg: Config, frames: bool = False):
    """A thunk building one pouring env (its agent view in ``info["frame"]`` with ``frames``), for a VecEnv."""
    def thunk():
        leave_interrupts_to_parent()  # in a SubprocVecEnv worker; the run closes the envs
        torch.set_num_threads(1)
        env = PourEnv(cfg.env, render_mode="rgb_array" if frames else None)
        return Monitor(FrameInInfo(env) if frames else env, info_keywords=("fraction_in_bowl", "is_success"))

    return thunk


def vec_env(cfg: Config, n_envs: int, frames: bool = False, subprocess: bool = True) -> VecEnv:
    """``n_envs`` pouring envs, in subprocesses when more than one."""
    fns = [make_env(cfg, frames) for _ in range(n_envs)]
    return SubprocVecEnv(fns) if n_envs > 1 and subprocess else DummyVecEnv(fns)


def appended_observation(obs, emb, demo, t, episode_steps: int) -> np.ndarray:
    """Observations (N, O) extended with the current embeddings ``emb`` (N, D) and the demo's
    embeddings (T_d, D) at steps ``t`` (N,) of ``episode_steps``-step episodes: (N, O + 2D) float32."""
    idx = demo_index(np.asarray(t), episode_steps + 1, len(demo))
    return np.concatenate([obs, emb, np.asarray(demo)[idx]], axis=1).astype(np.float32)


class AppendEmbedding(VecEnvWrapper):
    """Extends a vector (state) observation with the embedding of the current frame and the demo's
    embedding at the same step (``rl.append_embedding``): the current frame's from ``encoder``
    (embedding each env's frames as a video from ``info["frame"]``), or, with ``encoder=None``, the one a
    ``LearnedRewardVecEnv`` below put in ``info["embedding"]`` (one embedding call for both).

    Args:
        venv: the vectorized envs, with a ``LearnedRewardVecEnv`` or ``FrameInInfo`` envs below.
        demo: (T_d, D) the demo's embeddings by the same encoder.
        episode_steps: steps per episode, for the demo time alignment.
        encoder: an ``encoders.Encoder``, or None for the reward's embeddings.
    """

    def __init__(self, venv, demo: np.ndarray, episode_steps: int, encoder=None) -> None:
        space = venv.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise ValueError("append_embedding works with vector (state) observations")
        self.demo, self.episode_steps = np.asarray(demo, dtype=np.float64), episode_steps
        d = 2 * self.demo.shape[1]
        space = spaces.Box(np.concatenate([space.low, np.full(d, -np.inf, np.float32)]),
                           np.concatenate([space.high, np.full(d, np.inf, np.float32)]), dtype=np.float32)
        super().__init__(venv, observation_space=space)
        self.streams = encoder.streams(venv.num_envs) if encoder is not None else None
        self.t = np.zeros(venv.num_envs, dtype=int)

    def _restart(self, index: np.ndarray, infos: list[dict]) -> np.ndarray:
        if self.streams is None:
            return np.stack([infos[i]["embedding"] for i in index])
        return self.streams.restart(index, np.stack([infos[i]["frame"] for i in index]))

    def reset(self):
        obs = self.venv.reset()
        self.reset_infos = self.venv.reset_infos
        self.t[:] = 0
        return appended_observation(obs, self._restart(np.arange(self.num_envs), self.reset_infos), self.demo, self.t,
                                    self.episode_steps)

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        self.reset_infos = self.venv.reset_infos
        self.t += 1
        if self.streams is None:
            current = np.stack([info["embedding"] for info in infos])
        else:
            current = self.streams.step(np.stack([info["frame"] for info in infos]))
        done = np.flatnonzero(dones)
        for i in done:
            infos[i]["terminal_observation"] = appended_observation(infos[i]["terminal_observation"][None], current[i : i + 1],
                                                                    self.demo, self.t[i : i + 1], self.episode_steps)[0]
        if len(done):
            current = current.copy()
            current[done] = self._restart(done, self.reset_infos)
        self.t[dones] = 0
        return appended_observation(obs, current, self.demo, self.t, self.episode_steps), rewards, dones, infos


def normalized_view(venv: VecEnv, cfg: Config, statistics: VecNormalize | Path) -> VecEnv:
    """``venv`` (with raw rewards) as a trained policy sees it: with ``rl.normalize_obs``, its
    observations standardized by the training statistics, never updated: those of the training env
    ``statistics`` (shared, so they follow training), or read from the policy checkpoint ``statistics``."""
    if not cfg.rl.normalize_obs:
        return venv
    view = VecNormalize(venv, norm_obs=True, norm_reward=False, training=False)
    if isinstance(statistics, VecNormalize):
        view.obs_rms = statistics.obs_rms
    else:
        try:
            restore_normalization(view, statistics)
        except BaseException:
            venv.close()
            raise
    return view
