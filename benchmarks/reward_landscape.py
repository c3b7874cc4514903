"""Which behaviours a learned reward prefers: the episode return of scripted robot behaviours
against one demo, for the paper's exact time index and for the alignment window, side by side.

    python benchmarks/reward_landscape.py --checkpoint C --demo EPISODE_DIR [--demo-view 0] [--seeds 8] [--policy RUN ...]

Behaviours (robot, state-space script, no action noise): full pours into the bowl started 0, 8, 15
and 25 steps after the episode starts, missed pours (tipped out short of the bowl, or carried past
it to the end of the workspace) at 0 and 15, the pour's path with the cup kept upright (carried to
the bowl and back, nothing poured), moving the cup away from the bowl to the near end of the
workspace, tipping the cup out where it stands, and standing still. A reward that PPO can climb ranks every
pour above every miss, the tip-out and standing still, whatever the pour's timing. Scenes are
``PourEnv`` resets with seeds 5000 .. 5000 + seeds - 1. Prints mean returns and the fraction in
the bowl, one row per behaviour; ``--policy RUN`` adds a row for the deterministic policy of a
``train-rl`` run (its last checkpoint), to compare what RL found with what the reward ranks highest.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from tcn_robot import runs
from tcn_robot.config import RewardConfig, load_config
from tcn_robot.data.episodes import load_demo
from tcn_robot.encoders import baseline_encoder, checkpoint_encoder
from tcn_robot.envs import PourEnv
from tcn_robot.envs.demonstrators import pour_plan
from tcn_robot.methods import BASELINES
from tcn_robot.reward import episode_tcn_rewards
from tcn_robot.rl import RLRun
from tcn_robot.rl.envs import appended_observation
from tcn_robot.rl.policy_io import NORMALIZATION, entry

BEHAVIOURS = {  # name: (steps of waiting before the plan, kind of miss) or a special
    "pour, start at 0": (0, None), "pour, start at 8": (8, None), "pour, start at 15": (15, None),
    "pour, start at 25": (25, None), "miss short, start at 0": (0, "short"), "miss short, start at 15": (15, "short"),
    "miss past, start at 0": (0, "past"), "miss past, start at 15": (15, "past"),
    "carry upright, start at 8": "upright", "move away from the bowl": "away",
    "tip out where it stands": "tip", "stand still": "still",
}


class Policy:
    """The last policy of a ``train-rl`` run, with what it observes besides the state: an
    encoder's embedding of the agent view and the demo's at t, when the run appended them."""

    def __init__(self, run: Path) -> None:
        rl_run = RLRun.open(run)
        rl_run.load_reward(torch.device("cpu"))
        venv = rl_run.vec_env(1)  # the spaces the policy acts in
        self.model: BaseAlgorithm = rl_run.load_policy(venv, runs.LAST_POLICY)
        venv.close()
        self.steps = rl_run.cfg.env.episode_steps
        self.encoder, self.demo = rl_run.observe or (None, None)
        self.obs_stats = None
        if rl_run.cfg.rl.normalize_obs:  # standardized as in training (SB3 VecNormalize: epsilon 1e-8, clipped to 10)
            s = json.loads(entry(runs.checkpoint(run, runs.LAST_POLICY), NORMALIZATION))["obs"]
            self.obs_stats = np.asarray(s["mean"]), np.sqrt(np.asarray(s["var"]) + 1e-8)

    def observe(self, states: np.ndarray, frames: np.ndarray, t: np.ndarray) -> np.ndarray:
        """What the policy observes (N, O') at env states (N, O) with agent views (N, H, W, 3) at steps t (N,)."""
        obs = states if self.encoder is None else appended_observation(states, self.encoder(frames), self.demo, t, self.steps)
        if self.obs_stats is None:
            return obs
        mean, std = self.obs_stats
        return np.clip((obs - mean) / std, -10.0, 10.0).astype(np.float32)

    def act(self, obs: np.ndarray, frame: np.ndarray, t: int) -> np.ndarray:
        return self.model.predict(self.observe(obs[None], frame[None], np.array([t])), deterministic=True)[0][0]


def play(cfg, seed: int, behaviour) -> tuple[np.ndarray, np.ndarray, float]:
    """One episode, scripted or (``behaviour`` a ``Policy``) a trained policy acting
    deterministically: the env states before every step (T, O), the agent-view frames at the start
    and after every step (T + 1, H, W, 3), and the final fraction in the bowl."""
    env = PourEnv(cfg.env, render_mode="rgb_array")
    obs, _ = env.reset(seed=seed)
    frame = env.render()
    start = np.array([*env.target_center, 0.0])
    if isinstance(behaviour, Policy):
        plan = None  # the policy acts
    elif behaviour == "still":
        plan = [start]
    elif behaviour == "upright":
        plan = [start] * 8 + [np.array([*q[:3], 0.0]) for q in pour_plan(env, np.random.default_rng(seed), start[:3], partial=False)]
    elif behaviour == "away":
        plan = [start + [(cfg.env.x_limits[0] - start[0]) * min(k / 15, 1), 0, 0.02 * min(k, 3), 0] for k in range(1, 30)]
    elif behaviour == "tip":  # lift a little and tip fully over the table
        plan = [start + [0, 0, 0.02 * min(k, 3), min(k, 16) * 0.15] for k in range(1, 30)]
    else:
        wait, miss = behaviour
        plan = [start] * wait + pour_plan(env, np.random.default_rng(seed), start[:3], partial=False, miss=miss)
    states, frames = [], [frame]
    for k in range(cfg.env.episode_steps):
        states.append(obs)
        if plan is None:
            action = behaviour.act(obs, frame, k)
        else:
            goal = plan[min(k, len(plan) - 1)]
            action = env.action_for(goal[:3], goal[3]).astype(np.float32)
        obs, *_ = env.step(action)
        frame = env.render()
        frames.append(frame)
    in_bowl = env.measurement.in_bowl
    env.close()
    return np.stack(states), np.stack(frames), in_bowl


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a train-tcn checkpoint, or random | pixels")
    p.add_argument("--demo", required=True, help="the demonstration episode folder")
    p.add_argument("--demo-view", type=int, default=0)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--window", type=int, default=RewardConfig().window, help="the alignment window to compare with 0")
    p.add_argument("--config", default=None, help="the config of the env and the baseline encoders")
    p.add_argument("--policy", action="append", default=[], help="a train-rl run folder whose last policy to score too")
    args = p.parse_args()
    cfg = load_config(args.config)
    device = torch.device("cpu")
    enc = baseline_encoder(args.checkpoint, cfg.model, 0, device) if args.checkpoint in BASELINES else checkpoint_encoder(args.checkpoint, device)
    demo = enc(load_demo(args.demo, args.demo_view))
    exact, windowed = RewardConfig(window=0), RewardConfig(window=args.window)
    behaviours = dict(BEHAVIOURS)
    for run in args.policy:
        behaviours[f"policy {Path(run).name}"] = Policy(Path(run))
    print(f"{'behaviour':26s} {'return, exact index':>20s} {f'return, window {args.window}':>18s} {'in bowl':>8s}")
    for name, behaviour in behaviours.items():
        rows = []
        for s in range(args.seeds):
            _, frames, in_bowl = play(cfg, 5000 + s, behaviour)
            w = enc(frames[1:])
            rows.append((episode_tcn_rewards(w, demo, exact).sum(), episode_tcn_rewards(w, demo, windowed).sum(), in_bowl))
        r = np.array(rows)
        print(f"{name:26s} {r[:, 0].mean():20.6g} {r[:, 1].mean():18.6g} {r[:, 2].mean():8.2f}", flush=True)


if __name__ == "__main__":
    main()
