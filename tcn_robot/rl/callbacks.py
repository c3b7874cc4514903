"""Callbacks of a train-rl run: evaluation with best and last checkpoints, and the learned return."""
from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv
from tqdm import tqdm

from .. import runs
from ..io import write_json
from ..processes import StopRequest
from .evaluation import evaluate_policy
from .policy_io import save_policy


class EvalAndCheckpoint(BaseCallback):
    """Every ``every`` environment steps: evaluate, log to TensorBoard, keep best and last
    checkpoints and the evaluation history; also checkpoints ``last`` every ``minutes`` of wall time,
    stops training between two steps when ``stop`` is requested (Ctrl-C, SIGTERM), and drives the
    progress bar."""

    def __init__(self, run: Path, env: VecEnv, every: int, episodes: int, total: int, history: list,
                 minutes: float, stop: StopRequest) -> None:
        super().__init__()
        self.run, self.env, self.every, self.episodes, self.total = run, env, every, episodes, total
        self.history, self.minutes, self.stop = history, minutes, stop
        self.best = max((h["fraction_in_bowl_mean"] for h in history), default=-np.inf)
        self.next_eval = (history[-1]["steps"] if history else 0) + every
        self.started = self.saved = time.perf_counter()
        self.offset = history[-1]["wall_seconds"] if history else 0.0  # time spent before a resume
        self.bar = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, initial=self.num_timesteps, desc="train-rl", unit="step", smoothing=0.05, mininterval=2.0)

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self.bar.n)
        if self.num_timesteps >= self.next_eval:
            self.evaluate()
            self.next_eval += self.every
        elif self.minutes and time.perf_counter() - self.saved > 60 * self.minutes:
            self.save_last()
        return not self.stop.requested

    def save_last(self) -> None:
        save_policy(self.model, runs.checkpoint(self.run, runs.LAST_POLICY), replay_buffer=True)
        self.saved = time.perf_counter()

    def evaluate(self) -> dict:
        result = evaluate_policy(self.model, self.env, self.episodes)
        result["steps"] = int(self.num_timesteps)
        result["wall_seconds"] = time.perf_counter() - self.started + self.offset
        self.history.append(result)
        for k in ("fraction_in_bowl_mean", "success_rate", "return_mean"):
            self.logger.record(f"eval/{k}", result[k])
        self.logger.dump(self.num_timesteps)
        self.save_last()
        if result["fraction_in_bowl_mean"] > self.best:
            self.best = result["fraction_in_bowl_mean"]
            save_policy(self.model, runs.checkpoint(self.run, runs.BEST_POLICY))
        write_json(self.run / runs.EVAL_HISTORY, self.history)
        self.bar.set_postfix(poured=f"{result['fraction_in_bowl_mean']:.2f}", success=f"{result['success_rate']:.2f}")
        return result


class LearnedReturnLogger(BaseCallback):
    """Logs ``rollout/learned_ep_rew_mean``, the mean return of the learned reward over the last
    100 training episodes, beside SB3's ``rollout/ep_rew_mean`` (the env's ground-truth return,
    from the Monitor inside each env): the learned return rising while the true one falls is
    reward hacking."""

    def __init__(self, window: int = 100) -> None:
        super().__init__()
        self.returns: deque[float] = deque(maxlen=window)
        self.running: np.ndarray | None = None

    def _on_step(self) -> bool:
        infos, dones = self.locals["infos"], self.locals["dones"]
        if self.running is None:
            self.running = np.zeros(len(infos))
        self.running += [info.get("learned_reward", 0.0) for info in infos]
        for i in np.flatnonzero(dones):
            self.returns.append(float(self.running[i]))
            self.running[i] = 0.0
        return True

    def _on_rollout_end(self) -> None:
        if self.returns:
            self.logger.record("rollout/learned_ep_rew_mean", float(np.mean(self.returns)))
