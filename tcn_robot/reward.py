"""Rewards from an embedding: the TCN paper's time-indexed reward and XIRL's goal distance, as scores
of frame embeddings, and the vec-env wrapper that replaces an env's reward by one of them.

TCN (Sermanet et al. 2017, Sec. V-C): R(v_t, w_t) = -a ||w_t - v_t||^2 - b sqrt(g + ||w_t - v_t||^2),
v_t the embedding of demonstration frame t, w_t that of the robot's frame at step t. The squared
term shapes from afar, the Huber-like root term sharpens near the demonstration. Defaults
a = b = 0.5, g = 1e-3 (as third-party TCN reproductions use; the paper gives none).

Time alignment: an episode of T steps and a demo of T_d frames are matched by linear rescaling,
episode step t <-> demo frame i(t) = round(t (T_d - 1) / (T - 1)), and the reward is the best of R
over the demo frames i(t) - W .. i(t) + W (``reward.window`` = W; W = 0 is the paper's exact index).
A demonstrator's pace is not the robot's: with W = 0 a pour a few steps early scores below not
pouring at all, so PPO never learns to pour (docs/results.md, "What the reward prefers").
"""
from __future__ import annotations

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnvWrapper

from .config import RewardConfig

LEARNED = ("tcn", "goal", "orca", "progress")  # the learned rewards (rl.reward also takes "env", the ground truth)


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


def episode_tcn_rewards(episode_emb, demo_emb, cfg: RewardConfig) -> np.ndarray:
    """Per-step TCN reward of an episode's embeddings (T, D) against a demo's (T_d, D)."""
    idx = demo_index(np.arange(len(episode_emb)), len(episode_emb), len(demo_emb))
    return aligned_tcn_reward(episode_emb, demo_emb, idx, cfg)


class Score:
    """A reward of frame embeddings: ``score(embeddings (N, D), steps (N,)) -> rewards (N,)``, the frames
    at steps ``steps`` (1, 2, ...) of N episodes. ``restart(index (k,), embeddings (k, D))`` tells a score
    that keeps a history that those episodes started again, with these reset frames (step 0)."""

    def __call__(self, embeddings: np.ndarray, steps: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def restart(self, index: np.ndarray, embeddings: np.ndarray) -> None:
        pass


class TimeIndexed(Score):
    """The paper's reward against the demo (T_d, D): step t of a ``episode_steps``-step episode scored
    against the demo frames around i(t) (``aligned_tcn_reward``)."""

    def __init__(self, demo: np.ndarray, cfg: RewardConfig, episode_steps: int) -> None:
        self.demo, self.cfg, self.episode_steps = np.asarray(demo, dtype=np.float64), cfg, episode_steps

    def __call__(self, embeddings, steps):
        return aligned_tcn_reward(embeddings, self.demo, demo_index(steps, self.episode_steps + 1, len(self.demo)), self.cfg)


class GoalDistance(Score):
    """XIRL's reward: the distance to the demo's last frame, scaled by the demo's start-to-goal distance."""

    def __init__(self, demo: np.ndarray) -> None:
        demo = np.asarray(demo, dtype=np.float64)
        self.goal, self.scale = demo[-1], max(float(np.linalg.norm(demo[0] - demo[-1])), 1e-6)

    def __call__(self, embeddings, steps):
        return goal_reward(embeddings, self.goal, self.scale).numpy()


def cosine_distances(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """1 - cos(w_n, v_j): (N, D) and (T_d, D) -> (N, T_d)."""
    w = np.asarray(w, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    w = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return 1.0 - w @ v.T


def ordered_cover(previous: np.ndarray | None, cost: np.ndarray) -> np.ndarray:
    """One row of ORCA's ordered coverage of the demo in cost form (Huey et al. 2025): for each demo frame
    j, the least total cost of matching demo frames 0..j, in order, to frames of the episode so far (a
    later demo frame to the same or a later episode frame). ``cost`` (N, T_d) are the costs of the N
    current frames, ``previous`` the rows of the frames before (None for an episode's first frame):
    L[t, 0] = min(L[t-1, 0], c_0); L[t, j] = min(L[t-1, j], L[t, j-1] + c_j); the last column is the
    current frame's only, as in ORCA: L[t, -1] = L[t, -2] + c_-1."""
    row = np.empty_like(cost)
    last = cost.shape[1] - 1
    row[:, 0] = cost[:, 0] if previous is None else np.minimum(previous[:, 0], cost[:, 0])
    for j in range(1, last + 1):
        step = row[:, j - 1] + cost[:, j]
        row[:, j] = step if previous is None or j == last else np.minimum(previous[:, j], step)
    return row


class OrderedCoverage(Score):
    """ORCA's reward (Huey et al. 2025, "Imitation Learning from a Single Temporally Misaligned Video"):
    the probability that the episode so far has covered every demo frame in order and now matches the
    last, exp(-L[t, T_d - 1] / temperature) in [0, 1] (match probabilities exp(-cosine distance /
    temperature), their products the ordered cover's sums). Online: each env's cover is updated with
    its frame at every step, its reset frame first."""

    def __init__(self, demo: np.ndarray, temperature: float) -> None:
        self.demo, self.temperature = np.asarray(demo, dtype=np.float64), temperature
        self.rows: np.ndarray | None = None  # (N, T_d) each env's cover of the demo so far

    def restart(self, index, embeddings):
        index = np.asarray(index)
        if self.rows is None:  # the first restart is every env's
            self.rows = np.zeros((int(index.max()) + 1, len(self.demo)))
        self.rows[index] = ordered_cover(None, cosine_distances(embeddings, self.demo))

    def __call__(self, embeddings, steps):
        self.rows = ordered_cover(self.rows, cosine_distances(embeddings, self.demo))
        return np.exp(-self.rows[:, -1] / self.temperature)


def ordered_margin(previous: np.ndarray | None, margin: np.ndarray) -> np.ndarray:
    """One row of the best in-order match of the demo by the episode so far, starting anywhere in the demo
    (a local alignment, Smith & Waterman 1981, over ORCA's ordered cover): for each demo frame j, the
    largest total ``margin`` of a stretch of demo frames ending at j, matched in order to frames of the
    episode so far. ``margin`` (N, T_d) are the current frames' margins (positive where they match), and
    ``previous`` the rows of the frames before (None for an episode's first frame):
    S[t, j] = max(S[t-1, j], max(S[t, j-1], 0) + m_j)."""
    row = np.empty_like(margin)
    for j in range(margin.shape[1]):
        here = (np.maximum(row[:, j - 1], 0.0) if j else 0.0) + margin[:, j]
        row[:, j] = here if previous is None else np.maximum(previous[:, j], here)
    return row


class OrderedProgress(Score):
    """How much of the demo's course the episode has reproduced, in order, at any pace: the best stretch of
    demo frames matched in order by frames of the episode so far (``ordered_margin``), each demo frame
    counting by its margin, how much closer (cosine distance) the frame matched to it is than to the demo's
    frames at the ``quantile`` of its distances to all of them (so that the margins do not depend on the
    embedding's scale, nor on the distance between the robot's and the demonstrator's looks); the progress
    phi_t is the stretch's total margin per demo frame, and the reward its increase phi_t - phi_{t-1}
    (potential-based shaping, Ng et al. 1999), so that an episode's return is the progress it reached.
    The stretch may start anywhere: the human's reach for the cup, which no robot frame shows, costs
    nothing. A pour at any pace reproduces the pour; a carry without the tilt, a spill or standing still
    reproduce only the parts their frames match."""

    def __init__(self, demo: np.ndarray, quantile: float) -> None:
        self.demo, self.quantile = np.asarray(demo, dtype=np.float64), quantile
        self.rows: np.ndarray | None = None  # (N, T_d) each env's best stretch ending at every demo frame
        self.phi: np.ndarray | None = None

    def _margin(self, embeddings) -> np.ndarray:
        c = cosine_distances(embeddings, self.demo)
        return np.quantile(c, self.quantile, axis=1, keepdims=True) - c

    def _progress(self, rows: np.ndarray) -> np.ndarray:
        return np.maximum(rows.max(1), 0.0) / self.demo.shape[0]

    def restart(self, index, embeddings):
        index = np.asarray(index)
        if self.rows is None:  # the first restart is every env's
            self.rows = np.zeros((int(index.max()) + 1, len(self.demo)))
            self.phi = np.zeros(len(self.rows))
        self.rows[index] = ordered_margin(None, self._margin(embeddings))
        self.phi[index] = self._progress(self.rows[index])

    def __call__(self, embeddings, steps):
        self.rows = ordered_margin(self.rows, self._margin(embeddings))
        phi = self._progress(self.rows)
        rewards, self.phi = phi - self.phi, phi
        return rewards


def make_score(kind: str, demo: np.ndarray, cfg: RewardConfig, episode_steps: int) -> Score:
    """The score of ``rl.reward`` ``kind`` (one of ``LEARNED``) against the demo embeddings (T_d, D)."""
    if kind == "tcn":
        return TimeIndexed(demo, cfg, episode_steps)
    if kind == "goal":
        return GoalDistance(demo)
    if kind == "orca":
        return OrderedCoverage(demo, cfg.temperature)
    if kind == "progress":
        return OrderedProgress(demo, cfg.quantile)
    raise ValueError(f"a learned reward is one of {', '.join(LEARNED)}, got {kind!r}")


def episode_rewards(kind: str, episode: np.ndarray, demo: np.ndarray, cfg: RewardConfig) -> np.ndarray:
    """The reward of every step of one episode (its embeddings (T + 1, D), the reset frame first) under
    ``kind``: (T,), the reward of the frames after each step, as the vec-env wrapper gives them."""
    score = make_score(kind, demo, cfg, len(episode) - 1)
    score.restart(np.zeros(1, int), episode[:1])
    return np.array([score(episode[t : t + 1], np.array([t]))[0] for t in range(1, len(episode))])


class LearnedRewardVecEnv(VecEnvWrapper):
    """Replaces a VecEnv's reward by ``score`` of the embeddings of its envs' frames, in one batched
    embedding call per step (the shape of imitation's ``RewardVecEnvWrapper``).

    The envs put the frame they render at the end of every step and reset in ``info["frame"]``
    (``rl.envs.FrameInInfo``: any gymnasium env with ``render_mode="rgb_array"``), rendered in the
    env's own process (in parallel under SubprocVecEnv) before the VecEnv's auto-reset, so the last
    step of an episode is scored on its own frame. Each env's frames are a video to the encoder (a
    clip encoder's embedding reads the frames before the current one, from its episode only). The
    env's reward stays in ``info["env_reward"]``; the learned one is also ``info["learned_reward"]``,
    and each frame's embedding ``info["embedding"]`` (``reset_infos`` too), for ``rl.envs.AppendEmbedding``.

    Args:
        venv: the vectorized envs.
        encoder: an ``encoders.Encoder``.
        score: the reward of the embeddings (``Score``).
    """

    def __init__(self, venv, encoder, score: Score) -> None:
        super().__init__(venv)
        self.encoder, self.score = encoder, score
        self.t = np.zeros(venv.num_envs, dtype=int)
        self.streams = encoder.streams(venv.num_envs)

    def reset(self):
        obs = self.venv.reset()
        self.t[:] = 0
        self.reset_infos = self.venv.reset_infos
        every = np.arange(self.num_envs)
        emb = self.streams.restart(every, np.stack([info["frame"] for info in self.reset_infos]))
        self.score.restart(every, emb)
        for i, info in enumerate(self.reset_infos):
            info["embedding"] = emb[i]
        return obs

    def step_wait(self):
        obs, env_rewards, dones, infos = self.venv.step_wait()
        self.t += 1
        emb = self.streams.step(np.stack([info["frame"] for info in infos]))
        rewards = np.asarray(self.score(emb, self.t), dtype=np.float32)
        for i, info in enumerate(infos):
            info["env_reward"] = float(env_rewards[i])
            info["learned_reward"] = float(rewards[i])
            info["embedding"] = emb[i]
        self.reset_infos = self.venv.reset_infos
        done = np.flatnonzero(dones)
        if len(done):  # the new episodes' first frames
            restarted = self.streams.restart(done, np.stack([self.reset_infos[i]["frame"] for i in done]))
            self.score.restart(done, restarted)
            for k, i in enumerate(done):
                self.reset_infos[i]["embedding"] = restarted[k]
        self.t[dones] = 0
        return obs, rewards, dones, infos
