"""Reinforcement learning on the pouring task with stable-baselines3 (``tcn-robot train-rl``).

A policy is rewarded by the env's ground truth (``env``), by the TCN embedding distance to one
demonstration video (``tcn``, the paper's time-indexed reward) or by XIRL's distance to the demo's
last frame (``goal``); the encoder is a TCN checkpoint or a baseline (``random``, ``pixels``).

Modules, one concern each (after stable-baselines3's ``common/``): ``envs`` (the VecEnv, the frames a
learned reward reads, the embeddings appended to the observation, the normalized view of a trained
policy), ``evaluation`` (the ground-truth fraction poured), ``callbacks`` (evaluation, checkpoints,
the learned return), ``policy_io`` (policies on disk, never unpickled) and ``run`` (``RLRun``, one
run folder's life: set up, learn, finish, resume, open for replay).
"""
from .evaluation import EVAL_SEED, evaluate_policy
from .run import ALGOS, RLRun, pinned_files, train_rl

__all__ = ["ALGOS", "EVAL_SEED", "RLRun", "evaluate_policy", "pinned_files", "train_rl"]
