"""Evaluation of a policy on the ground truth: the fraction of particles it pours into the bowl (and,
in a scene of several pouring tasks, the jar), its score on the env's behaviour and the behaviour
it performed (envs/behaviours.py)."""
from __future__ import annotations

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

EVAL_SEED = 1_000_000  # evaluation episodes use seeds EVAL_SEED + i, never drawn in training


def evaluate_policy(model: BaseAlgorithm, venv: VecEnv, episodes: int, seed: int = EVAL_SEED) -> dict:
    """Deterministic rollouts on a one-env VecEnv, seeds ``seed .. seed + episodes - 1``: the
    ground-truth fraction of particles in the bowl at the end of each episode (mean, std, per
    episode), the success rate, and the mean return of the reward the policy trains on; per episode
    also the fraction in the jar, the behaviour's score and the behaviour performed."""
    fractions, successes, returns, finals = [], [], [], []
    for i in range(episodes):
        venv.seed(seed + i)
        obs = venv.reset()
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, dones, infos = venv.step(action)
            total += float(reward[0])
            done = bool(dones[0])
        fractions.append(infos[0]["fraction_in_bowl"])
        finals.append(infos[0])
        successes.append(infos[0]["is_success"])
        returns.append(total)
    return {
        "fraction_in_bowl_mean": float(np.mean(fractions)),
        "fraction_in_bowl_std": float(np.std(fractions)),
        "success_rate": float(np.mean(successes)),
        "return_mean": float(np.mean(returns)),
        "fraction_in_bowl": [float(f) for f in fractions],
        "fraction_in_jar": [float(i["fraction_in_jar"]) for i in finals],
        "goal_score_mean": float(np.mean([i["goal_score"] for i in finals])),
        "goal_score": [float(i["goal_score"]) for i in finals],
        "behaviour_performed": [i["behaviour_performed"] for i in finals],
    }
