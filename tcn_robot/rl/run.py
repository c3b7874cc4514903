"""One train-rl run: ``RLRun`` owns a run folder's life. ``train`` sets it up from a config (new,
resumed or overwritten), learns and finishes; ``RLRun.open`` reads a run back (for ``replay``), and
``vec_env`` / ``policy_env`` / ``load_policy`` rebuild what its policy acts in.

Layout of a run folder (after rl-baselines3-zoo, names in ``runs.py``): ``config.yaml``,
``checkpoints/{last,best}.zip`` (each holding the normalization statistics and, for SAC's ``last``,
the replay buffer, so that what ``--resume`` needs is one file; nothing in it is unpickled, see
``policy_io.py``), ``tb/`` (TensorBoard), ``eval.json`` (the evaluation history), ``eval_curve.png``,
``metrics.json``. The run's mark records a digest of its encoders and demo: ``--resume`` and
``replay`` refuse a changed one unless ``--accept-changed-inputs``.
"""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from .. import UserError, runs
from ..config import Config, load_config, resume_changes, save_config
from ..data.episodes import load_demo
from ..device import pick_device
from ..encoders import Encoder, baseline_encoder, checkpoint_encoder
from ..evaluate.plots import eval_curve
from ..io import FILES_BASE, FILES_PER_PROCESS, ensure_open_files, read_json, write_json
from ..methods import BASELINES
from ..processes import StopRequest
from ..reward import LEARNED, LearnedRewardVecEnv, make_score
from .callbacks import EvalAndCheckpoint, LearnedReturnLogger
from .envs import AppendEmbedding, normalized_view, vec_env
from .policy_io import load_policy, restore_normalization, restore_replay_buffer

ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC}


def absolute_paths(cfg: Config) -> Config:
    """``cfg`` with the files ``rl`` names (encoders, demo) as absolute paths, so that the run folder
    replays from any working directory; the baseline names stay."""
    def absolute(p: str) -> str:
        return p if not p or p in BASELINES else str(Path(p).resolve())
    rl = cfg.rl
    return replace(cfg, rl=replace(rl, encoder=absolute(rl.encoder), observe_encoder=absolute(rl.observe_encoder), demo=absolute(rl.demo)))


def pinned_files(cfg: Config) -> dict[str, str]:
    """The input files a run's figures depend on (config key -> path): its encoders and its demo."""
    rl = cfg.rl
    if rl.reward == "env":
        return {}
    return {key: path for key, path in (("rl.encoder", rl.encoder), ("rl.observe_encoder", rl.observe_encoder), ("rl.demo", rl.demo))
            if path and path not in BASELINES}


class RLRun:
    """The run folder ``folder`` made (or to be made) from ``cfg``.

    After ``load_reward``: ``encoder`` and ``demo`` (the demo's embeddings (T_d, D)) of a learned
    reward, and ``observe``, the (encoder, demo embeddings) ``rl.append_embedding`` adds to the
    observation (None when it is off); all None for the env's own reward.
    """

    def __init__(self, cfg: Config, folder: str | Path) -> None:
        self.cfg, self.folder = absolute_paths(cfg), Path(folder)
        self.encoder: Encoder | None = None
        self.demo: np.ndarray | None = None
        self.observe: tuple[Encoder, np.ndarray] | None = None

    # ----------------------------------------------------------------- reading a run back
    @classmethod
    def open(cls, folder: str | Path, accept_changed: bool = False) -> RLRun:
        """The train-rl run in ``folder``, with its saved config; its encoders and demo must be where
        they were and, unless ``accept_changed``, unchanged since the run started."""
        folder = Path(folder)
        if not (folder / runs.CONFIG).is_file() or runs.output_kind(folder) not in ("train-rl", None):
            raise UserError(f"{folder}: not a train-rl run folder")
        run = cls(load_config(None, (), base=folder / runs.CONFIG), folder)
        for key, path in pinned_files(run.cfg).items():
            if not Path(path).exists():
                raise UserError(f"{folder / runs.CONFIG}: {key} names {path}, which is missing (moved or deleted?)")
        runs.check_pinned(folder, pinned_files(run.cfg), accept_changed)
        return run

    def load_reward(self, device: torch.device | None = None) -> None:
        """Load the reward's encoder and the demo's embeddings, and those of the observation."""
        rl = self.cfg.rl
        device = device if device is not None else pick_device(self.cfg.train.device)
        if rl.observe_encoder and (not rl.append_embedding or rl.reward == "env"):
            raise UserError("--observe-encoder needs rl.append_embedding=true and a learned reward (--reward tcn or goal)")
        if rl.reward == "env":
            return
        if rl.reward not in LEARNED:
            raise UserError(f"rl.reward must be one of env, {', '.join(LEARNED)}, got {rl.reward!r}")
        if not rl.encoder or not rl.demo:
            raise UserError(f"--reward {rl.reward} needs --encoder (a checkpoint, random or pixels) and --demo EPISODE_DIR")
        self.encoder = self._encoder(rl.encoder, device)
        self.demo = self.encoder(load_demo(rl.demo, rl.demo_view))
        if not rl.append_embedding:
            return
        if not rl.observe_encoder or rl.observe_encoder == rl.encoder:
            self.observe = (self.encoder, self.demo)
        else:
            other = self._encoder(rl.observe_encoder, device)
            self.observe = (other, other(load_demo(rl.demo, rl.demo_view)))

    def _encoder(self, name: str, device: torch.device) -> Encoder:
        """A checkpoint's encoder, or a baseline (random-features takes its statistics from every view of the demo)."""
        if name not in BASELINES:
            return checkpoint_encoder(name, device)
        reference = None
        if name == "random-features":
            frames = load_demo(self.cfg.rl.demo)  # (T, V, H, W, 3): every view, one after the other
            reference = frames.swapaxes(0, 1).reshape(-1, *frames.shape[2:])
        return baseline_encoder(name, self.cfg.model, self.cfg.train.seed, device, reference=reference)

    def vec_env(self, n_envs: int, subprocess: bool = True, views: bool = False) -> VecEnv:
        """``n_envs`` pouring envs with this run's reward and observation (``load_reward`` first); with
        ``views``, every camera's frame of each step in ``info["views"]`` (for replay videos)."""
        cfg = replace(self.cfg, env=replace(self.cfg.env, views_in_info=True)) if views else self.cfg
        venv = vec_env(cfg, n_envs, frames=self.encoder is not None, subprocess=subprocess)
        if self.encoder is None:
            return venv
        venv = LearnedRewardVecEnv(venv, self.encoder, make_score(cfg.rl.reward, self.demo, cfg.reward, cfg.env.episode_steps))
        if self.observe is not None:
            other = self.observe[0] if self.observe[0] is not self.encoder else None
            venv = AppendEmbedding(venv, self.observe[1], cfg.env.episode_steps, encoder=other)
        return venv

    def policy_env(self, venv: VecEnv, statistics: VecNormalize | Path) -> VecEnv:
        """``venv`` as the policy sees it (``envs.normalized_view``)."""
        return normalized_view(venv, self.cfg, statistics)

    def load_policy(self, venv: VecEnv, name: str = runs.BEST_POLICY) -> BaseAlgorithm:
        """The policy ``checkpoints/name`` of this run, acting in ``venv``."""
        path = runs.checkpoint(self.folder, name)
        return load_policy(path, ALGOS[self.cfg.rl.algo], venv, self.cfg.rl.ppo.clip_range, self.cfg.rl.sac.train_freq)

    # ----------------------------------------------------------------- training
    def history(self) -> list[dict]:
        """The evaluations so far (``eval.json``); raises ``UserError`` when the file is damaged."""
        path = self.folder / runs.EVAL_HISTORY
        if not path.is_file():
            return []
        try:
            history = read_json(path)
            keys = ("steps", "fraction_in_bowl_mean", "fraction_in_bowl_std", "success_rate", "wall_seconds")
            if not (isinstance(history, list) and all(isinstance(h, dict) and all(isinstance(h.get(k), (int, float)) for k in keys)
                                                      for h in history)):
                raise ValueError("not a list of evaluations")
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: damaged ({e}); start the run again with --overwrite") from None
        return history

    def _model(self, venv: VecEnv) -> BaseAlgorithm:
        rl = self.cfg.rl
        kwargs = asdict(rl.ppo) if rl.algo == "ppo" else asdict(rl.sac)
        policy = {"net_arch": list(kwargs.pop("net_arch"))}
        if "log_std_init" in kwargs:
            policy["log_std_init"] = kwargs.pop("log_std_init")
        return ALGOS[rl.algo]("MlpPolicy", venv, policy_kwargs=policy, seed=rl.seed, device="cpu",
                              tensorboard_log=str(self.folder / runs.TENSORBOARD), verbose=0, **kwargs)

    def train(self, resume: bool = False, overwrite: bool = False, accept_changed: bool = False) -> dict:
        """Train ``rl.algo`` on ``rl.reward`` into the folder; returns the final metrics.

        Every input (config, encoders, demo, the policy being resumed) is read before anything is
        written; a resumed run refuses an encoder or demo that changed since it started, unless
        ``accept_changed``. On Ctrl-C or SIGTERM the policy is saved before stopping."""
        cfg, run = self.cfg, self.folder
        rl = cfg.rl
        mode = runs.check_output(run, "train-rl", resume, overwrite)
        runs.check_apart(run, pinned_files(cfg))
        last = runs.checkpoint(run, runs.LAST_POLICY)
        resumed = mode == "resume" and last.is_file()  # a run stopped before its first checkpoint starts again from 0
        if mode == "resume" and not (run / runs.CONFIG).is_file():
            raise UserError(f"--resume: {run} stopped before it saved its config; run the original command again with --overwrite")
        changes = resume_changes(run, cfg, "train-rl") if resumed else {}
        digests = runs.check_pinned(run, pinned_files(cfg), accept_changed) if resumed else runs.pinned_inputs(pinned_files(cfg))
        self.load_reward()
        ensure_open_files(FILES_BASE + FILES_PER_PROCESS * (rl.n_envs + 1), f"{rl.n_envs} environment processes")
        if rl.n_envs > 1:  # the env subprocesses keep the cores busy: more torch threads here only oversubscribe them
            torch.set_num_threads(1)
        torch.manual_seed(rl.seed)
        venv = self.vec_env(rl.n_envs)
        eval_env = None
        try:
            venv.seed(rl.seed)
            if rl.normalize_reward or rl.normalize_obs:
                venv = VecNormalize(venv, norm_obs=rl.normalize_obs, norm_reward=rl.normalize_reward,
                                    gamma=rl.ppo.gamma if rl.algo == "ppo" else rl.sac.gamma)
            history = []
            if resumed:
                model = self.load_policy(venv, runs.LAST_POLICY)
                model.tensorboard_log = str(run / runs.TENSORBOARD)
                if isinstance(venv, VecNormalize):
                    restore_normalization(venv, last)
                if isinstance(model, OffPolicyAlgorithm):
                    restore_replay_buffer(model, last)
                history = self.history()
            else:
                model = self._model(venv)
            inputs = {"encoder": rl.encoder, "demo": rl.demo, "digests": digests}
            runs.claim_output(run, "train-rl", mode, inputs=inputs)
            if runs.output_inputs(run) != inputs:  # accepted new inputs, or a restart from 0
                runs.set_inputs(run, inputs)
            if changes:
                runs.record_resume(run, model.num_timesteps, changes)
            save_config(cfg, run)
            eval_env = self.policy_env(self.vec_env(1), venv)
            with StopRequest() as stop:
                callback = EvalAndCheckpoint(run, eval_env, rl.eval_every, rl.eval_episodes, rl.steps, history,
                                             cfg.train.checkpoint_minutes, stop)
                callbacks = CallbackList([callback, LearnedReturnLogger()]) if self.encoder is not None else callback
                try:
                    remaining = rl.steps - model.num_timesteps
                    if remaining > 0:
                        model.learn(remaining, callback=callbacks, reset_num_timesteps=not resumed, tb_log_name=rl.algo)
                finally:
                    if callback.bar is not None:
                        callback.bar.close()
                callback.model = model
                if stop.requested:
                    callback.save_last()
                    raise KeyboardInterrupt
                if not history or history[-1]["steps"] != model.num_timesteps:
                    callback.evaluate()
                else:  # the last update (and, for SAC, the last transitions) came after the last evaluation's checkpoint
                    callback.save_last()
        finally:
            venv.close()
            if eval_env is not None:
                eval_env.close()
        return self._finish(history)

    def _finish(self, history: list[dict]) -> dict:
        rl, run = self.cfg.rl, self.folder
        final = history[-1]
        metrics = {
            "algo": rl.algo, "reward": rl.reward, "encoder": rl.encoder or None, "demo": rl.demo or None,
            "demo_view": rl.demo_view, "observe_encoder": (rl.observe_encoder or rl.encoder) if self.observe else None,
            "steps": final["steps"], "seed": rl.seed, "n_envs": rl.n_envs,
            "final_eval": final, "best_fraction_in_bowl_mean": max(h["fraction_in_bowl_mean"] for h in history),
            "wall_seconds": final["wall_seconds"], "resumes": runs.resumes(run),
        }
        write_json(run / runs.METRICS, metrics)
        eval_curve(history, run / runs.EVAL_CURVE, title=f"{rl.algo.upper()}, reward: {rl.reward}")
        return metrics


@runs.owns_outputs
def train_rl(cfg: Config, out: str | Path, resume: bool = False, overwrite: bool = False, accept_changed: bool = False) -> dict:
    """``tcn-robot train-rl``: ``RLRun(cfg, out).train(...)``; returns the final metrics."""
    return RLRun(cfg, out).train(resume, overwrite, accept_changed)
