"""``tcn-robot replay``: run a trained policy (or a random one) and show what it does.

For each episode k (file names in ``runs.replay_files``): a video with every camera view side by
side and, when the run learned from a demonstration, the demo frame of the same time step beside
them; a plot of the learned reward and the ground-truth fraction poured over time; a strip of a few
frames of the demo above the robot's agent view at the same time steps; and ``metrics.json`` over
all episodes.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from omegaconf import OmegaConf

from . import UserError, runs
from .data.episodes import load_demo
from .evaluate import plots
from .io import write_json
from .reward import demo_index
from .rl import EVAL_SEED, RLRun
from .video import VideoWriter

STRIP_FRAMES = 6  # columns of the frame strip of each episode


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    out = frame.copy()
    cv2.putText(out, text, (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _demo_frame(demo: np.ndarray, t: int, steps: int, size: int) -> np.ndarray:
    """The demo frame matched to episode step ``t`` (as the reward matches them), at ``size`` px."""
    frame = demo[demo_index(t, steps + 1, len(demo))]
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA) if frame.shape[0] != size else frame


@runs.owns_outputs
def replay(run: str | Path, episodes: int, out: str | Path, policy: str = "trained", seed: int = EVAL_SEED,
           overwrite: bool = False, accept_changed: bool = False) -> dict:
    """Replay ``episodes`` episodes of the run's best policy (or ``policy="random"``) into ``out``
    (new, or an earlier replay with ``overwrite``); the run folder may have moved, as long as the
    encoder and demo its config names (absolute paths) are where they were, unchanged (or
    ``accept_changed``)."""
    run, out = Path(run), Path(out)
    if episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {episodes}")
    rl_run = RLRun.open(run, accept_changed)
    mode = runs.check_output(out, "replay", overwrite=overwrite)
    runs.check_apart(out, {"--run": run})
    cfg = rl_run.cfg
    ckpt = runs.checkpoint(run, runs.BEST_POLICY)
    if policy == "trained" and not ckpt.exists():
        raise UserError(f"{ckpt}: missing (train the run first, or pass --policy random)")
    rl_run.load_reward()
    encoder = rl_run.encoder
    venv = rl_run.vec_env(1, views=True)  # each step's frames, before the VecEnv's auto-reset
    if policy == "trained":
        venv = rl_run.policy_env(venv, ckpt)
    try:
        model = rl_run.load_policy(venv) if policy == "trained" else None
    except BaseException:
        venv.close()
        raise
    env = venv.unwrapped.envs[0].unwrapped  # the PourEnv under the reward wrapper and Monitor
    demo_frames = load_demo(cfg.rl.demo, cfg.rl.demo_view) if cfg.rl.demo else None
    runs.claim_output(out, "replay", mode, inputs={"run": str(run.resolve())})
    rng = np.random.default_rng(seed)
    steps, size, fps = cfg.env.episode_steps, cfg.env.image_size, env.metadata["render_fps"]
    results = []
    try:
        for k in range(episodes):
            venv.seed(seed + k)
            obs = venv.reset()
            views = env.render_views()
            learned, env_rewards, poured, agent = [], [], [env.measurement.in_bowl], []
            columns = len(views) + (demo_frames is not None)
            files = runs.replay_files(k)
            with VideoWriter(out / files["video"], fps, (size * columns, size)) as video:
                for t in range(steps + 1):
                    agent.append(views[cfg.env.agent_view])
                    frames = [_label(f, f"view {v}") for v, f in enumerate(views)]
                    if demo_frames is not None:
                        frames.append(_label(_demo_frame(demo_frames, t, steps, size), "demo"))
                    video.write(np.concatenate(frames, axis=1))
                    if t == steps:
                        break
                    if model is not None:
                        action, _ = model.predict(obs, deterministic=True)
                    else:
                        action = rng.uniform(-1, 1, size=(1, *venv.action_space.shape)).astype(np.float32)
                    obs, reward, dones, infos = venv.step(action)
                    views = infos[0]["views"]
                    env_rewards.append(infos[0].get("env_reward", float(reward[0])))
                    learned.append(infos[0].get("learned_reward", np.nan))
                    poured.append(infos[0]["fraction_in_bowl"])
            curves = {"learned reward" if encoder is not None else "env reward": (np.array(learned if encoder is not None else env_rewards),
                                                                                   np.array(poured[1:]))}
            times = np.linspace(0, steps, STRIP_FRAMES).round().astype(int)
            rows = {"demo video": np.stack([_demo_frame(demo_frames, t, steps, size) for t in times])} if demo_frames is not None else {}
            rows[f"robot, {policy} policy"] = np.stack(agent)[times]
            final = infos[0]
            where = f"{poured[-1]:.0%} in the bowl" + (f", {final['fraction_in_jar']:.0%} in the jar: {final['behaviour_performed']}"
                                                       if cfg.env.scene != "bowl" else "")
            plots.frame_strip(rows, times, fps, out / files["strip"], f"episode {k}: {where}")
            plots.reward_curves(curves, out / files["reward"], f"episode {k} ({policy} policy)")
            results.append({"seed": seed + k, "fraction_in_bowl": poured[-1], "is_success": bool(final["is_success"]),
                            "fraction_in_jar": final["fraction_in_jar"], "behaviour_performed": final["behaviour_performed"],
                            "env_return": float(np.sum(env_rewards)),
                            "learned_return": float(np.sum(learned)) if encoder is not None else None})
    finally:
        venv.close()
    fr = [r["fraction_in_bowl"] for r in results]
    metrics = {"run": str(run), "policy": policy, "episodes": results, "fraction_in_bowl_mean": float(np.mean(fr)),
               "fraction_in_bowl_std": float(np.std(fr)), "success_rate": float(np.mean([r["is_success"] for r in results])),
               "reward": cfg.rl.reward, "config": OmegaConf.to_container(OmegaConf.structured(cfg.rl))}
    write_json(out / runs.METRICS, metrics)
    return metrics
