"""PPO environment steps per second with the env's reward, with rendering only, and with the
learned TCN reward, measured side by side (same PPO settings, same number of steps).

    python benchmarks/rl_speed.py [--steps 4096] [--n-envs 2] [--checkpoint C]

"rendering only" renders the agent view every step (as the learned reward needs) but keeps the
env's reward; "TCN reward" adds the batched embedding of every env's frame and the reward. The
encoder is the checkpoint given, else a random-init network of the default architecture (the
same cost).
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from stable_baselines3 import PPO

from tcn_robot.config import load_config
from tcn_robot.encoders import baseline_encoder, checkpoint_encoder
from tcn_robot.reward import LearnedRewardVecEnv, make_score
from tcn_robot.rl.envs import vec_env


def measure(cfg, steps: int, n_envs: int, encoder=None, render: bool = False) -> float:
    venv = vec_env(cfg, n_envs, frames=render or encoder is not None)
    if encoder is not None:  # the reward's cost alone (no embedding in the observation)
        demo = np.zeros((101, cfg.model.embedding_dim))
        venv = LearnedRewardVecEnv(venv, encoder, make_score("tcn", demo, cfg.reward, cfg.env.episode_steps))
    model = PPO("MlpPolicy", venv, n_steps=512, batch_size=256, n_epochs=5, seed=0, device="cpu", verbose=0)
    model.learn(512 * n_envs)  # warm-up
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    rate = steps / (time.perf_counter() - start)
    venv.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4096)
    ap.add_argument("--n-envs", type=int, default=2)
    ap.add_argument("--checkpoint", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_config()
    encoder = checkpoint_encoder(args.checkpoint, torch.device("cpu")) if args.checkpoint else \
        baseline_encoder("random", cfg.model, 0, torch.device("cpu"))
    with tempfile.TemporaryDirectory():
        env_rate = measure(cfg, args.steps, args.n_envs)
        render_rate = measure(cfg, args.steps, args.n_envs, render=True)
        tcn_rate = measure(cfg, args.steps, args.n_envs, encoder=encoder)
    print(f"# PPO, {args.n_envs} envs in subprocesses, {args.steps} steps, 64 px agent view, small CNN encoder on the CPU")
    print("| reward | env steps/s | cost over rendering only |")
    print("| --- | ---: | ---: |")
    print(f"| env (ground truth) | {env_rate:.0f} | - |")
    print(f"| rendering only | {render_rate:.0f} | 0% |")
    print(f"| TCN reward (batched) | {tcn_rate:.0f} | {100 * (render_rate / tcn_rate - 1):.0f}% |")


if __name__ == "__main__":
    main()
