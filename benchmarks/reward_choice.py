"""Which behaviour a learned reward asks for, before any PPO: the swap test (benchmarks/swap_test.py) at the level of
the reward. In fresh scenes of a world with several behaviours (seeds no recording used), the scripted robot
performs every behaviour (no misses, little action noise) and also stands still, filmed by the agent's camera; each
performance's return under the reward against each behaviour's held-out human-proxy demo (the swap test's demos).
PPO can only learn what its reward ranks first, so the share of scenes in which the demo's own behaviour has the
highest return bounds the swap test's diagonal. Scenes are split by their arrangement relative to the demo's (rebuilt
from the demo's seed): the bowl on the side it stood in the demo ("as the demo") or on the other ("mirrored"). A
reward that reads the side of the pour, not the receptacle, picks the demo's behaviour only in the first and the
other receptacle in the second.

    python benchmarks/reward_choice.py --config family --heldout runs/fam/data_heldout \\
        --checkpoint base=runs/fam/tcn/checkpoints/best.pt --scenes 10

Prints per checkpoint the count of scenes in which each performance ranks first, per demo and arrangement, and the
share of all scenes in which the demo's behaviour does (the diagonal).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tcn_robot.config import load_config
from tcn_robot.data.episodes import Dataset, choose_demo, load_episode
from tcn_robot.encoders import checkpoint_encoder
from tcn_robot.envs import PourEnv, run_demonstrator
from tcn_robot.envs.behaviours import behaviours_of
from tcn_robot.reward import LEARNED, episode_rewards

STILL = "still"
FIRST_SCENE = 10_000  # scene seeds FIRST_SCENE.. (recordings draw theirs from their own seed sequences)


def bowl_side(env: PourEnv, seed: int) -> int:
    """The side (sign of y) the bowl stands on in the scene of ``seed``."""
    env.reset(seed=seed)
    return int(np.sign(env.world.bowl_pos[1]))


def performances(env: PourEnv, seed: int, behaviours: list[str]) -> dict[str, tuple[np.ndarray, str]]:
    """Per behaviour (and ``STILL``) the agent view's frames (T + 1, H, W, 3) of the scripted robot performing it in
    the scene of ``seed``, and the behaviour it performed by the ground truth."""
    out = {}
    for b in behaviours:
        steps = run_demonstrator("robot", env, seed, behaviour=b, miss_prob=0.0, partial_prob=0.0, noise=0.05)  # resets now
        frames, info = [env.render()], {}
        for step in steps:
            frames.append(env.render())
            info = step.info
        out[b] = (np.stack(frames), info.get("behaviour_performed", "none"))
    env.reset(seed=seed)
    frames = [env.render()]
    for _ in range(env.cfg.episode_steps):
        env.step(np.zeros(env.action_space.shape, np.float32))
        frames.append(env.render())
    out[STILL] = (np.stack(frames), "none")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="the config of the world with several behaviours (and its reward)")
    p.add_argument("--heldout", type=Path, required=True, help="held-out episodes holding each behaviour's demo")
    p.add_argument("--checkpoint", action="append", required=True, metavar="NAME=PATH")
    p.add_argument("--scenes", type=int, default=10)
    p.add_argument("--reward", choices=LEARNED, help="default: the config's rl.reward")
    p.add_argument("--demo", action="append", default=[], metavar="BEHAVIOUR=EPISODE",
                   help="the demo of a behaviour (default: the first successful held-out human-proxy one)")
    args = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    cfg = load_config(args.config)
    reward = args.reward or cfg.rl.reward
    behaviours = list(behaviours_of(cfg.env.scene))
    if len(behaviours) < 2:
        p.error(f"{args.config}: its scene {cfg.env.scene!r} allows one behaviour; the choice needs several")
    episodes = Dataset.open(args.heldout).episodes
    named = dict(d.split("=", 1) for d in args.demo)
    demos = {b: load_episode(named[b]) if b in named else choose_demo(episodes, args.heldout, b) for b in behaviours}
    env = PourEnv(replace(cfg.env, views_in_info=False), render_mode="rgb_array")
    demo_side = {b: bowl_side(env, int(ep.meta["seed"])) for b, ep in demos.items()}
    encoders = [checkpoint_encoder(spec, torch.device("cpu")) for spec in args.checkpoint]
    demo_emb = {(e.name, b): e(ep.read_view(cfg.rl.demo_view)) for e in encoders for b, ep in demos.items()}
    columns = behaviours + [STILL]
    first = {(e.name, b, a): np.zeros(len(columns), int) for e in encoders for b in behaviours for a in ("as the demo", "mirrored")}
    returns = {(e.name, b): [] for e in encoders for b in behaviours}  # per scene, the returns of every column
    wrong = 0
    for k in tqdm(range(args.scenes), desc="scenes", unit="scene"):
        seed = FIRST_SCENE + k
        side = bowl_side(env, seed)
        played = performances(env, seed, behaviours)
        wrong += sum(played[b][1] != b for b in behaviours)
        for e in encoders:
            embs = {c: e(frames) for c, (frames, _) in played.items()}
            for b in behaviours:
                r = np.array([episode_rewards(reward, embs[c], demo_emb[e.name, b], cfg.reward).sum() for c in columns])
                returns[e.name, b].append(r)
                first[e.name, b, "as the demo" if side == demo_side[b] else "mirrored"][int(np.argmax(r))] += 1
    env.close()
    print(f"\n{reward} reward; demos: " + ", ".join(f"{b} {ep.name} (bowl at y {demo_side[b]:+d})" for b, ep in demos.items())
          + f"; {args.scenes} scenes from seed {FIRST_SCENE}; scripted performances not performing their behaviour: {wrong}")
    print("\nScenes in which each performance has the highest return:\n")
    print("| embedding | demo | arrangement | " + " | ".join(columns) + " |")
    print("| --- | --- | --- |" + " ---: |" * len(columns))
    for (name, b, a), counts in first.items():
        if counts.sum():
            print(f"| {name} | {b} | {a} | " + " | ".join(str(c) for c in counts) + " |")
    print("\n| embedding | demo's behaviour first, all scenes | as the demo | mirrored | mean return (" + ", ".join(columns) + ") |")
    print("| --- | ---: | ---: | ---: | --- |")
    for e in encoders:
        diag = {a: sum(first[e.name, b, a][i] for i, b in enumerate(behaviours)) for a in ("as the demo", "mirrored")}
        n = {a: sum(first[e.name, b, a].sum() for b in behaviours) for a in diag}
        means = "; ".join(f"{b}: " + " / ".join(f"{x:.3f}" for x in np.mean(returns[e.name, b], 0)) for b in behaviours)
        print(f"| {e.name} | {sum(diag.values()) / sum(n.values()):.0%} | {diag['as the demo']} of {n['as the demo']} "
              f"| {diag['mirrored']} of {n['mirrored']} | {means} |")


if __name__ == "__main__":
    main()
