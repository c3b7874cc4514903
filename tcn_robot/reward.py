"""Rewards from an embedding: the TCN paper's time-indexed reward and XIRL's goal distance.

TCN (Sermanet et al. 2017, Sec. V-C): R(v_t, w_t) = -a ||w_t - v_t||^2 - b sqrt(g + ||w_t - v_t||^2),
v_t the embedding of demonstration frame t, w_t that of the robot's frame at step t. The squared
term shapes from afar, the Huber-like root term sharpens near the demonstration. Defaults
a = b = 0.5, g = 1e-3 (as third-party TCN reproductions use; the paper gives none).

Time alignment: an episode of T steps and a demo of T_d frames are matched by linear rescaling,
episode step t <-> demo frame i(t) = round(t (T_d - 1) / (T - 1)), and the reward is the best of R
over the demo frames i(t) - W .. i(t) + W (``reward.window`` = W; W = 0 is the paper's exact index).
A demonstrator's pace is not the robot's: with W = 0 a pour a few steps early scores below not
pouring at all, so PPO never learns to pour; W = 10 (0.5 s at 20 Hz) keeps every pour above every
miss, dump and standing still (README, "Learning to pour").
"""
from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnvWrapper

from .config import RewardConfig


KINDS = ("env", "tcn", "goal")


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


def aligned_tcn_reward(w, demo, idx, cfg: RewardConfig) -> np.ndarray:
    """TCN reward (N,) of embeddings ``w`` (N, D) matched to demo frames ``idx`` (N,) of ``demo``
    (T_d, D): the best over demo frames ``idx - cfg.window .. idx + cfg.window`` (clipped to the demo)."""
    demo = np.asarray(demo)
    j = np.clip(np.asarray(idx)[:, None] + np.arange(-cfg.window, cfg.window + 1), 0, len(demo) - 1)
    return tcn_reward(np.asarray(w)[:, None, :], demo[j], cfg.a, cfg.b, cfg.g).max(-1).values.numpy()


def appended_observation(obs, emb, demo, t, episode_steps: int) -> np.ndarray:
    """Observations (N, O) extended with the current embeddings ``emb`` (N, D) and the demo's
    embeddings (T_d, D) at steps ``t`` (N,) of ``episode_steps``-step episodes: (N, O + 2D) float32."""
    idx = demo_index(np.asarray(t), episode_steps + 1, len(demo))
    return np.concatenate([obs, emb, np.asarray(demo)[idx]], axis=1).astype(np.float32)


def episode_tcn_rewards(episode_emb, demo_emb, cfg: RewardConfig) -> np.ndarray:
    """Per-step TCN reward of an episode's embeddings (T, D) against a demo's (T_d, D)."""
    idx = demo_index(np.arange(len(episode_emb)), len(episode_emb), len(demo_emb))
    return aligned_tcn_reward(episode_emb, demo_emb, idx, cfg)


class LearnedRewardVecEnv(VecEnvWrapper):
    """Replaces a pouring VecEnv's reward by a learned one, in one batched embedding call per step.

    The envs must put their agent-view frame in ``info["agent_frame"]`` (``env.frame_in_info``):
    the frame is rendered in the env's own process (in parallel under SubprocVecEnv) at the
    instant the step ends, so the last step of an episode is scored on its own frame although
    the VecEnv has already reset. Each env's frames are a video to the encoder (``streams``): a
    clip encoder's embedding reads the frames before the current one, from its episode only. The
    env's reward stays in ``info["env_reward"]``; the learned one in ``info["learned_reward"]`` too.

    Args:
        venv: the vectorized pouring envs.
        encoder: an ``evaluate.encoders.Encoder``.
        demo_embeddings: (T_d, D) embeddings of the demonstration frames.
        cfg: the constants a, b, g and the alignment window of the TCN reward.
        kind: ``tcn`` (time-indexed, the paper's) or ``goal`` (XIRL's distance to the demo's last frame).
        episode_steps: steps per episode, for the demo time alignment.
        observe: ``(encoder, demo embeddings (T_d, D'))`` to extend the (state) observation with
            that encoder's embedding of the agent view and the demo's at t (``rl.append_embedding``);
            the reward's own pair by default (``rl.observe_encoder``), embedded once for both.
    """

    def __init__(self, venv, encoder, demo_embeddings: np.ndarray, cfg: RewardConfig, kind: str, episode_steps: int,
                 observe: tuple | None = None) -> None:
        if kind not in ("tcn", "goal"):
            raise ValueError(f"a learned reward is 'tcn' or 'goal', got {kind!r}")
        self.encoder, self.cfg, self.kind, self.episode_steps = encoder, cfg, kind, episode_steps
        self.demo = np.asarray(demo_embeddings, dtype=np.float64)
        self.goal = self.demo[-1]
        self.scale = max(float(np.linalg.norm(self.demo[0] - self.goal)), 1e-6)
        self.append = observe is not None
        obs_space = venv.observation_space
        if self.append:
            self.obs_encoder, self.obs_demo = observe[0], np.asarray(observe[1], dtype=np.float64)
            if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
                raise ValueError("append_embedding works with vector (state) observations")
            d = 2 * self.obs_demo.shape[1]
            obs_space = spaces.Box(np.concatenate([obs_space.low, np.full(d, -np.inf, np.float32)]),
                                   np.concatenate([obs_space.high, np.full(d, np.inf, np.float32)]), dtype=np.float32)
        super().__init__(venv, observation_space=obs_space)
        self.t = np.zeros(venv.num_envs, dtype=int)
        # one history per env: a clip encoder's embedding of a frame reads the frames before it
        self.streams = encoder.streams(venv.num_envs)
        self.obs_streams = (self.streams if observe[0] is encoder else observe[0].streams(venv.num_envs)) if self.append else None

    def _demo_index(self, t: np.ndarray) -> np.ndarray:
        return demo_index(t, self.episode_steps + 1, len(self.demo))

    def rewards(self, embeddings: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Rewards (N,) of embeddings (N, D) of frames at steps ``t`` (N,)."""
        if self.kind == "tcn":
            return aligned_tcn_reward(embeddings, self.demo, self._demo_index(t), self.cfg)
        return goal_reward(embeddings, self.goal, self.scale).numpy()

    def _augment(self, obs: np.ndarray, emb: np.ndarray, t: np.ndarray) -> np.ndarray:
        return appended_observation(obs, emb, self.obs_demo, t, self.episode_steps)

    def reset(self):
        obs = self.venv.reset()
        self.t[:] = 0
        frames = np.stack([info["agent_frame"] for info in self.venv.reset_infos])
        every = np.arange(self.num_envs)
        emb = self.streams.restart(every, frames)
        if not self.append:
            return obs
        if self.obs_streams is not self.streams:
            emb = self.obs_streams.restart(every, frames)
        return self._augment(obs, emb, self.t)

    def step_wait(self):
        obs, env_rewards, dones, infos = self.venv.step_wait()
        self.t += 1
        frames = np.stack([info["agent_frame"] for info in infos])
        emb = self.streams.step(frames)
        rewards = self.rewards(emb, self.t).astype(np.float32)
        for i, info in enumerate(infos):
            info["env_reward"] = float(env_rewards[i])
            info["learned_reward"] = float(rewards[i])
            del info["agent_frame"]
        done = np.flatnonzero(dones)
        starts = np.stack([self.venv.reset_infos[i]["agent_frame"] for i in done]) if len(done) else None
        if not self.append:
            if len(done):
                self.streams.restart(done, starts)  # the new episodes' first frames
            self.t[dones] = 0
            return obs, rewards, dones, infos
        shared = self.obs_streams is self.streams
        current = emb if shared else self.obs_streams.step(frames)
        for i in done:
            infos[i]["terminal_observation"] = self._augment(infos[i]["terminal_observation"][None], current[i : i + 1], self.t[i : i + 1])[0]
        if len(done):
            current = current.copy()
            restarted = self.streams.restart(done, starts)
            current[done] = restarted if shared else self.obs_streams.restart(done, starts)
        self.t[dones] = 0
        return self._augment(obs, current, self.t), rewards, dones, infos
