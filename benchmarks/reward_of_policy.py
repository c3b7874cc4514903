"""What a learned reward makes of a trained policy: the learned return of the policy's deterministic rollouts against
that of the scripted robot performing the run's behaviour (no misses, little action noise) in the same scenes (the
run's evaluation seeds), under the run's embedding and, re-scored on the same frames against the same demo, under
any other (``--checkpoint``). A policy that earns about a scripted pour's return without pouring has found what the
reward cannot see; an embedding under which that rollout earns much less than the pour would not have let it.

    python benchmarks/reward_of_policy.py --run runs/fam3/swap_demo/learned/jar_s0 --policy last.zip --episodes 4 \\
        --checkpoint seq=runs/fam3/tcn_seq/checkpoints/best.pt

Prints per episode what the policy and the script performed (ground truth), and per embedding their returns, and
per embedding the policy's mean return as a share of the script's. With ``--every-camera`` both are filmed by every
camera of the robot's rig and each camera's frames are scored against the demo apart (the returns per episode are the
mean over cameras): whether another camera would have seen through what the agent's camera does not.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reward_choice import scripted  # noqa: E402

from tcn_robot import runs  # noqa: E402
from tcn_robot.data.episodes import load_demo  # noqa: E402
from tcn_robot.encoders import checkpoint_encoder  # noqa: E402
from tcn_robot.reward import episode_rewards  # noqa: E402
from tcn_robot.rl import EVAL_SEED, RLRun  # noqa: E402


def rollout(venv, model, env, seed: int, every_camera: bool = False) -> tuple[np.ndarray, dict, float]:
    """The agent view's frames (T + 1, H, W, 3) of the policy's deterministic episode in the scene of ``seed`` (with
    ``every_camera``, every camera's (V, T + 1, H, W, 3), from a ``vec_env(views=True)``), its last step's info (the
    ground truth), and the learned return the run's reward gave it online."""
    venv.seed(seed)
    obs = venv.reset()
    frames, done, online = [np.stack(env.render_views()) if every_camera else env.render()], False, 0.0
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, dones, infos = venv.step(action)
        # the frames the reward scored, rendered before any auto-reset
        frames.append(np.stack(infos[0]["views"]) if every_camera else infos[0]["frame"])
        done, online = dones[0], online + infos[0]["learned_reward"]
    return np.stack(frames, axis=1 if every_camera else 0), infos[0], online


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="a train-rl run with a learned reward")
    p.add_argument("--policy", default=runs.BEST_POLICY, help="its checkpoint to roll out (default: %(default)s)")
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH", help="another embedding to score with")
    p.add_argument("--every-camera", action="store_true", help="score every camera of the robot's rig, each apart")
    args = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    run = RLRun.open(args.run)
    run.load_reward(torch.device("cpu"))
    cfg = run.cfg
    venv = run.vec_env(1, subprocess=False, views=args.every_camera)
    venv = run.policy_env(venv, runs.checkpoint(run.folder, args.policy))
    model = run.load_policy(venv, args.policy)
    env = venv.unwrapped.envs[0].unwrapped
    demo = load_demo(cfg.rl.demo, cfg.rl.demo_view)
    encoders = {"the run's": run.encoder} | {e.name: e for e in (checkpoint_encoder(s, torch.device("cpu")) for s in args.checkpoint)}
    demos = {name: e(demo) for name, e in encoders.items()}
    returns = {name: [] for name in encoders}  # per episode, (policy, script), each (cameras,)
    cameras = len(cfg.env.cameras) if args.every_camera else 1
    print(f"{cfg.rl.reward} reward against {cfg.rl.demo} (view {cfg.rl.demo_view}); policy {args.policy}; behaviour {cfg.env.behaviour}\n")
    print("| scene seed | policy performed | its fraction spilled | script performed | "
          + " | ".join(f"{n}: policy / script" for n in encoders) + " |")
    print("| --- | --- | ---: | --- |" + " --- |" * len(encoders))
    for seed in range(EVAL_SEED, EVAL_SEED + args.episodes):
        (mine, info, _), (theirs, done) = (rollout(venv, model, env, seed, args.every_camera),
                                           scripted(env, seed, cfg.env.behaviour, args.every_camera))
        if not args.every_camera:
            mine, theirs = mine[None], theirs[None]
        cells = []
        for name, e in encoders.items():
            pair = np.array([[episode_rewards(cfg.rl.reward, e(f[v]), demos[name], cfg.reward).sum() for v in range(cameras)]
                             for f in (mine, theirs)])
            returns[name].append(pair)
            cells.append(f"{pair[0].mean():.3f} / {pair[1].mean():.3f}")
        print(f"| {seed} | {info['behaviour_performed']} | {info['fraction_spilled']:.2f} | {done} | " + " | ".join(cells) + " |")
    venv.close()
    print("\n| embedding | camera | policy's mean return | script's | policy / script | episodes the policy earns more |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, pairs in returns.items():
        pairs = np.array(pairs)  # (episodes, 2: policy and script, cameras)
        rows = [(f"view {v}", pairs[:, :, v]) for v in range(cameras)] if cameras > 1 else []
        for camera, both in [*rows, ("the agent's" if cameras == 1 else "mean of all", pairs.mean(2))]:
            mine, theirs = both.T
            share = f"{mine.mean() / theirs.mean():.2f}" if theirs.mean() > 0 else "-"  # a share of a positive return only
            print(f"| {name} | {camera} | {mine.mean():.3f} | {theirs.mean():.3f} | {share} | {int((mine > theirs).sum())} of {len(pairs)} |")


if __name__ == "__main__":
    main()
