"""``tcn-robot train-rl``: a stable-baselines3 policy for the pouring task, rewarded by the env's
ground truth (``env``), by the TCN embedding distance to one demonstration video (``tcn``, the
paper's time-indexed reward) or by XIRL's distance to the demo's last frame (``goal``); the
encoder is a TCN checkpoint or a baseline (``random``, ``pixels``). Periodic evaluation of the
ground-truth fraction poured and success rate, TensorBoard curves, best and last checkpoints,
``--resume``, and ``metrics.json`` with the final evaluation.

Layout of a run folder (after rl-baselines3-zoo): ``config.yaml``, ``checkpoints/{last,best}.zip``
(each holding the normalization statistics and, for SAC's ``last``, the replay buffer, so that what
``--resume`` needs is one file; nothing in it is unpickled, see ``policy_io.py``), ``tb/``
(TensorBoard), ``eval.json`` (the evaluation history), ``eval_curve.png``, ``metrics.json``. The
run's mark records a digest of its encoders and demo: ``--resume`` and ``replay`` refuse a changed
one unless ``--accept-changed-inputs``.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize
from tqdm import tqdm

from . import UserError, runs
from .config import Config, resume_changes, save_config
from .data.episodes import EpisodeError, load_episode
from .device import pick_device
from .envs import PourEnv
from .evaluate.encoders import baseline_encoder, checkpoint_encoder
from .io import FILES_BASE, FILES_PER_PROCESS, ensure_open_files, read_json, write_json
from .methods import BASELINES
from .policy_io import load_policy, restore_normalization, restore_replay_buffer, save_policy
from .processes import StopRequest, leave_interrupts_to_parent
from .reward import KINDS, LearnedRewardVecEnv

ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC}
EVAL_SEED = 1_000_000  # evaluation episodes use seeds EVAL_SEED + i, never drawn in training


def _make_env(cfg: Config):
    def thunk():
        leave_interrupts_to_parent()  # in a SubprocVecEnv worker; train_rl closes the envs
        torch.set_num_threads(1)
        return Monitor(PourEnv(cfg.env), info_keywords=("fraction_in_bowl", "is_success"))

    return thunk


def _load_encoder(name: str, cfg: Config, device: torch.device):
    """A checkpoint's encoder, or a baseline (``BASELINES``; random-features takes its statistics from
    every view of the demo)."""
    if name in BASELINES:
        reference = None
        if name == "random-features":
            demo = load_episode(cfg.rl.demo)
            reference = np.concatenate([demo.read_view(v) for v in range(demo.num_views)])
        return baseline_encoder(name, cfg.model, cfg.train.seed, device, reference=reference)
    return checkpoint_encoder(name, device)


def learned_reward_parts(cfg: Config, device: torch.device):
    """(encoder, demo embeddings (T_d, D)) for ``rl.reward`` tcn or goal, or (None, None) for env."""
    rl = cfg.rl
    if rl.reward == "env":
        return None, None
    if rl.reward not in KINDS:
        raise UserError(f"rl.reward must be one of {', '.join(KINDS)}, got {rl.reward!r}")
    if not rl.encoder or not rl.demo:
        raise UserError(f"--reward {rl.reward} needs --encoder (a checkpoint, random or pixels) and --demo EPISODE_DIR")
    encoder = _load_encoder(rl.encoder, cfg, device)
    return encoder, encoder(_demo_frames(cfg))


def observation_parts(cfg: Config, device: torch.device, reward_parts: tuple):
    """What ``rl.append_embedding`` adds to the observation: (encoder, demo embeddings (T_d, D')),
    the reward's own ``reward_parts`` unless ``rl.observe_encoder`` names another encoder; None
    without ``append_embedding`` or with the env reward (which has no demo)."""
    rl = cfg.rl
    if rl.observe_encoder and (not rl.append_embedding or reward_parts[0] is None):
        raise UserError("--observe-encoder needs rl.append_embedding=true and a learned reward (--reward tcn or goal)")
    if not rl.append_embedding or reward_parts[0] is None:
        return None
    if not rl.observe_encoder or rl.observe_encoder == rl.encoder:
        return reward_parts
    encoder = _load_encoder(rl.observe_encoder, cfg, device)
    return encoder, encoder(_demo_frames(cfg))


def _demo_frames(cfg: Config) -> np.ndarray:
    """The demo's frames (T_d, H, W, 3) from camera ``rl.demo_view``."""
    try:
        demo = load_episode(cfg.rl.demo)
    except EpisodeError as e:
        raise UserError(f"--demo: {e}") from None
    if not 0 <= cfg.rl.demo_view < demo.num_views:
        raise UserError(f"rl.demo_view={cfg.rl.demo_view} but {demo.path} has {demo.num_views} views")
    return demo.read_view(cfg.rl.demo_view)


def make_vec_env(cfg: Config, n_envs: int, encoder=None, demo=None, observe: tuple | None = None,
                 subprocess: bool = True) -> VecEnv:
    """``n_envs`` pouring envs (in subprocesses when more than one), with the learned reward
    wrapper when an encoder is given (and ``observe``, see ``observation_parts``)."""
    if encoder is not None:
        cfg = replace(cfg, env=replace(cfg.env, frame_in_info=True))
    fns = [_make_env(cfg) for _ in range(n_envs)]
    venv = SubprocVecEnv(fns) if n_envs > 1 and subprocess else DummyVecEnv(fns)
    if encoder is not None:
        venv = LearnedRewardVecEnv(venv, encoder, demo, cfg.reward, cfg.rl.reward, cfg.env.episode_steps, observe)
    return venv


def policy_view(venv: VecEnv, cfg: Config, statistics: VecNormalize | Path) -> VecEnv:
    """``venv`` (with raw rewards) as a trained policy sees it: with ``rl.normalize_obs``, its
    observations standardized by the training statistics, never updated: those of the training env
    ``statistics`` (shared, so they follow training), or read from the checkpoint path ``statistics``."""
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


def evaluate(model: BaseAlgorithm, venv: VecEnv, episodes: int, seed: int = EVAL_SEED) -> dict:
    """Deterministic rollouts on a one-env VecEnv, seeds ``seed .. seed + episodes - 1``: the
    ground-truth fraction of particles in the bowl at the end of each episode (mean, std, per
    episode), the success rate, and the mean return of the reward the policy trains on."""
    fractions, successes, returns = [], [], []
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
        successes.append(infos[0]["is_success"])
        returns.append(total)
    return {
        "fraction_in_bowl_mean": float(np.mean(fractions)),
        "fraction_in_bowl_std": float(np.std(fractions)),
        "success_rate": float(np.mean(successes)),
        "return_mean": float(np.mean(returns)),
        "fraction_in_bowl": [float(f) for f in fractions],
    }


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
        save_policy(self.model, runs.checkpoint(self.run, "last.zip"), replay_buffer=True)
        self.saved = time.perf_counter()

    def evaluate(self) -> dict:
        result = evaluate(self.model, self.env, self.episodes)
        result["steps"] = int(self.num_timesteps)
        result["wall_seconds"] = time.perf_counter() - self.started + self.offset
        self.history.append(result)
        for k in ("fraction_in_bowl_mean", "success_rate", "return_mean"):
            self.logger.record(f"eval/{k}", result[k])
        self.logger.dump(self.num_timesteps)
        self.save_last()
        if result["fraction_in_bowl_mean"] > self.best:
            self.best = result["fraction_in_bowl_mean"]
            save_policy(self.model, runs.checkpoint(self.run, "best.zip"))
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


def _history(run: Path) -> list[dict]:
    """The evaluations so far (``eval.json``); raises ``UserError`` when the file is damaged."""
    path = run / runs.EVAL_HISTORY
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


def absolute_paths(cfg: Config) -> Config:
    """``cfg`` with the files ``rl`` names (encoders, demo) as absolute paths, so that the run folder
    replays from any working directory; the baseline names ``random`` and ``pixels`` stay."""
    def absolute(p: str) -> str:
        return p if not p or p in BASELINES else str(Path(p).resolve())
    rl = cfg.rl
    return replace(cfg, rl=replace(rl, encoder=absolute(rl.encoder), observe_encoder=absolute(rl.observe_encoder), demo=absolute(rl.demo)))


def _new_model(cfg: Config, venv: VecEnv, run: Path) -> BaseAlgorithm:
    rl = cfg.rl
    kwargs = asdict(rl.ppo) if rl.algo == "ppo" else asdict(rl.sac)
    policy = {"net_arch": list(kwargs.pop("net_arch"))}
    if "log_std_init" in kwargs:
        policy["log_std_init"] = kwargs.pop("log_std_init")
    return ALGOS[rl.algo]("MlpPolicy", venv, policy_kwargs=policy, seed=rl.seed, device="cpu",
                          tensorboard_log=str(run / runs.TENSORBOARD), verbose=0, **kwargs)


def pinned_files(cfg: Config) -> dict[str, str]:
    """The input files a run's figures depend on (config key -> path): its encoders and its demo."""
    rl = cfg.rl
    if rl.reward == "env":
        return {}
    return {key: path for key, path in (("rl.encoder", rl.encoder), ("rl.observe_encoder", rl.observe_encoder), ("rl.demo", rl.demo))
            if path and path not in BASELINES}


@runs.owns_outputs
def train_rl(cfg: Config, out: str | Path, resume: bool = False, overwrite: bool = False, accept_changed: bool = False) -> dict:
    """Train ``cfg.rl.algo`` on ``cfg.rl.reward`` into ``out``; returns the final metrics.

    Every input (config, encoders, demo, the policy being resumed) is read before anything is
    written; a resumed run refuses an encoder or demo that changed since it started, unless
    ``accept_changed``. On Ctrl-C or SIGTERM the policy is saved before stopping."""
    rl = cfg.rl
    run = Path(out)
    mode = runs.check_output(run, "train-rl", resume, overwrite)
    cfg = absolute_paths(cfg)
    runs.check_apart(run, pinned_files(cfg))
    last = runs.checkpoint(run, "last.zip")
    resumed = mode == "resume" and last.is_file()  # a run stopped before its first checkpoint starts again from 0
    if mode == "resume" and not (run / runs.CONFIG).is_file():
        raise UserError(f"--resume: {run} stopped before it saved its config; run the original command again with --overwrite")
    changes = resume_changes(run, cfg, "train-rl") if resumed else {}
    digests = runs.check_pinned(run, pinned_files(cfg), accept_changed) if resumed else runs.pinned_inputs(pinned_files(cfg))
    device = pick_device(cfg.train.device)
    encoder, demo = learned_reward_parts(cfg, device)
    observe = observation_parts(cfg, device, (encoder, demo))
    ensure_open_files(FILES_BASE + FILES_PER_PROCESS * (rl.n_envs + 1), f"{rl.n_envs} environment processes")
    if rl.n_envs > 1:  # the env subprocesses keep the cores busy: more torch threads here only oversubscribe them
        torch.set_num_threads(1)
    torch.manual_seed(rl.seed)
    venv = make_vec_env(cfg, rl.n_envs, encoder, demo, observe)
    eval_env = None
    try:
        venv.seed(rl.seed)
        if rl.normalize_reward or rl.normalize_obs:
            venv = VecNormalize(venv, norm_obs=rl.normalize_obs, norm_reward=rl.normalize_reward,
                                gamma=rl.ppo.gamma if rl.algo == "ppo" else rl.sac.gamma)
        history = []
        if resumed:
            model = load_policy(last, ALGOS[rl.algo], venv, rl.ppo.clip_range, rl.sac.train_freq)
            model.tensorboard_log = str(run / runs.TENSORBOARD)
            if isinstance(venv, VecNormalize):
                restore_normalization(venv, last)
            if isinstance(model, OffPolicyAlgorithm):
                restore_replay_buffer(model, last)
            history = _history(run)
        else:
            model = _new_model(cfg, venv, run)
        inputs = {"encoder": cfg.rl.encoder, "demo": cfg.rl.demo, "digests": digests}
        runs.claim_output(run, "train-rl", mode, inputs=inputs)
        if runs.output_inputs(run) != inputs:  # accepted new inputs, or a restart from 0
            runs.set_inputs(run, inputs)
        if changes:
            runs.record_resume(run, model.num_timesteps, changes)
        save_config(cfg, run)
        eval_env = policy_view(make_vec_env(cfg, 1, encoder, demo, observe), cfg, venv)
        with StopRequest() as stop:
            callback = EvalAndCheckpoint(run, eval_env, rl.eval_every, rl.eval_episodes, rl.steps, history,
                                         cfg.train.checkpoint_minutes, stop)
            callbacks = CallbackList([callback, LearnedReturnLogger()]) if encoder is not None else callback
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
    final = history[-1]
    metrics = {
        "algo": rl.algo, "reward": rl.reward, "encoder": rl.encoder or None, "demo": rl.demo or None,
        "demo_view": rl.demo_view, "observe_encoder": (rl.observe_encoder or rl.encoder) if observe else None,
        "steps": final["steps"], "seed": rl.seed, "n_envs": rl.n_envs,
        "final_eval": final, "best_fraction_in_bowl_mean": max(h["fraction_in_bowl_mean"] for h in history),
        "wall_seconds": final["wall_seconds"], "resumes": runs.resumes(run),
    }
    write_json(run / runs.METRICS, metrics)
    from .evaluate.plots import eval_curve

    eval_curve(history, run / "eval_curve.png", title=f"{rl.algo.upper()}, reward: {rl.reward}")
    return metrics
