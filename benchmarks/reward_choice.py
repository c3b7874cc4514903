"""Which behaviour a learned reward asks for, before any PPO: the swap test (benchmarks/swap_test.py) at the level of
the reward. In fresh scenes of a world with several behaviours (seeds no recording used), the scripted robot
performs every behaviour (no misses, little action noise), carries the cup to each receptacle and holds it there
upright, full or after pouring it out onto the table (what a policy that has learned the carry but not the pour, or
an empty cup but not where the liquid goes, does), pours just past each receptacle, onto the table on the cameras'
side (a near-pour), and stands still, filmed by the agent's camera; each
performance's return under the reward against each behaviour's held-out human-proxy demo (the swap test's demos).
PPO can only learn what its reward ranks first, so the share of scenes in which the demo's own behaviour has the
highest return bounds the swap test's diagonal. Scenes are split by their arrangement relative to the demo's (rebuilt
from the demo's seed): the bowl on the side it stood in the demo ("as the demo") or on the other ("mirrored"). A
reward that reads the side of the pour, not the receptacle, picks the demo's behaviour only in the first and the
other receptacle in the second.

    python benchmarks/reward_choice.py --config family --heldout runs/fam/data_heldout \\
        --checkpoint base=runs/fam/tcn/checkpoints/best.pt --scenes 10

Prints per checkpoint the count of scenes in which each performance ranks first, per demo and arrangement, the
share of all scenes in which the demo's behaviour does (the diagonal), in the scenes arranged as the demo's the
margin of the demo's behaviour over a pour just past its receptacle, and for behaviours that pour into the same
receptacle (``bowl`` and ``half``: only the amount tells them apart) how far apart their last frames embed, as a
share of a pour's course (the cosine distance between the two performances' last frames over that between the
first's first and last frames, in the same scene): what a reward read from the embedding can see of the amount.
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
from tcn_robot.envs.behaviours import BEHAVIOURS, SCENES, behaviours_of
from tcn_robot.envs.demonstrators import pour_plan
from tcn_robot.reward import LEARNED, cosine_distances, episode_rewards

STILL = "still"
UPRIGHT, SPILLED = "upright {}", "spilled, {}"  # the cup held upright over a receptacle, full or after a spill
PAST = "past {}"  # poured out onto the table just past a receptacle, the cup held there tipped
PAST_SHIFT = 0.02  # m beyond the receptacle's radius to shift the pour: all of it on the table, 15-20 cm from its centre
FIRST_SCENE = 10_000  # scene seeds FIRST_SCENE.. (recordings draw theirs from their own seed sequences)


def bowl_side(env: PourEnv, seed: int) -> int:
    """The side (sign of y) the bowl stands on in the scene of ``seed``."""
    env.reset(seed=seed)
    return int(np.sign(env.world.bowl_pos[1]))


def filmed(env: PourEnv, actions) -> tuple[np.ndarray, str]:
    """The agent view's frames (T + 1, H, W, 3) of an episode of ``env`` (just reset) driven by ``actions(k)`` at
    its steps k, and the behaviour it performed by the ground truth."""
    frames, info = [env.render()], {}
    for k in range(env.cfg.episode_steps):
        info = env.step(actions(k))[-1]
        frames.append(env.render())
    return np.stack(frames), info["behaviour_performed"]


def end_states_apart(first: np.ndarray, second: np.ndarray) -> float:
    """How far apart the last frames of two performances' embeddings (T + 1, D) lie, as a share of the first one's
    course: the cosine distance between their last frames over that between the first's first and last frames."""
    return float(cosine_distances(first[-1:], second[-1:])[0, 0] / cosine_distances(first[:1], first[-1:])[0, 0])


def scripted(env: PourEnv, seed: int, behaviour: str, every_camera: bool = False) -> tuple[np.ndarray, str]:
    """The scripted robot performing ``behaviour`` in the scene of ``seed`` (no misses, little action noise): as
    ``filmed``; with ``every_camera``, the frames of every camera of the rig (V, T + 1, H, W, 3)."""
    render = (lambda: np.stack(env.render_views())) if every_camera else env.render
    steps = run_demonstrator("robot", env, seed, behaviour=behaviour, miss_prob=0.0, partial_prob=0.0, noise=0.05)
    frames, info = [render()], {}  # run_demonstrator has reset the env
    for step in steps:
        frames.append(render())
        info = step.info
    return np.stack(frames, axis=1 if every_camera else 0), info.get("behaviour_performed", "none")


def first_pose(plan: list[np.ndarray], tipped: bool, start: int = 0) -> int:
    """The index of the first pose [x, y, z, tilt] of ``plan`` from ``start`` on that is tipped (or upright)."""
    return next(i for i in range(start, len(plan)) if (plan[i][3] > 0) == tipped)


def reset_for(env: PourEnv, seed: int, receptacle: str) -> None:
    """Reset ``env`` to the scene of ``seed`` with the behaviour that pours into ``receptacle`` (its pour plans aim there)."""
    behaviour = next(b for b in behaviours_of(env.cfg.scene) if BEHAVIOURS[b].receptacle == receptacle)
    env.reset(seed=seed, options={"behaviour": behaviour})


def followed(env: PourEnv, poses: list[np.ndarray]) -> tuple[np.ndarray, str]:
    """``env`` (just reset) driven through the cup poses [x, y, z, tilt], the last held to the end: as ``filmed``."""
    pose = lambda k: poses[min(k, len(poses) - 1)]
    return filmed(env, lambda k: np.clip(env.action_for(pose(k)[:3], pose(k)[3]), -1, 1).astype(np.float32))


def held_over(env: PourEnv, seed: int, receptacle: str, spill: bool = False) -> tuple[np.ndarray, str]:
    """The scripted robot's carry of the cup to its pour point over ``receptacle`` in the scene of ``seed``, the cup
    held there upright to the end (what a policy that learned the carry but not the pour does); with ``spill``, first
    poured out onto the table near the start (a policy that learned that the cup must end empty and over the
    receptacle, not that the liquid must go into it): as ``filmed``."""
    reset_for(env, seed, receptacle)
    rng, start = np.random.default_rng([seed, 2]), env.target_center.copy()
    carry = pour_plan(env, rng, start, partial=False)
    poses = carry[: first_pose(carry, tipped=True)]  # lift, carry, to above the receptacle
    if spill:
        short = pour_plan(env, rng, start, partial=False, miss="short")
        poured = short[: first_pose(short, tipped=False, start=first_pose(short, tipped=True))]  # to the spill point, tipped, upright
        poses = poured + [poured[-1] + (poses[-1] - poured[-1]) * s for s in np.linspace(0, 1, 16)[1:]]
    return followed(env, poses)


def poured_past(env: PourEnv, seed: int, receptacle: str) -> tuple[np.ndarray, str]:
    """The scripted robot's full pour from ``PAST_SHIFT`` beyond its pour point over ``receptacle`` (toward the
    cameras: the particles land on the table just past the receptacle, in the agent's view in front of it), the cup
    held there tipped to the end: the near-pour PPO found on the family's learned reward. As ``filmed``."""
    reset_for(env, seed, receptacle)
    plan = pour_plan(env, np.random.default_rng([seed, 3]), env.target_center.copy(), partial=False)
    angle = max(p[3] for p in plan)
    held = max(i for i, p in enumerate(plan) if p[3] == angle)  # the end of the pour's hold
    shift = np.array([env.world.receptacles[receptacle][1] + PAST_SHIFT, 0.0, 0.0, 0.0])
    return followed(env, [p + shift for p in plan[: held + 1]])  # lift, carry, tip, hold; then held there tipped


def performances(env: PourEnv, seed: int, behaviours: list[str]) -> dict[str, tuple[np.ndarray, str]]:
    """Per behaviour, per receptacle held over full (``UPRIGHT``), after a spill (``SPILLED``) and poured just past
    (``PAST``), and ``STILL``: the agent view's frames (T + 1, H, W, 3) of the scripted robot in the
    scene of ``seed``, and the behaviour performed by the ground truth."""
    out = {b: scripted(env, seed, b) for b in behaviours}
    for receptacle in SCENES[env.cfg.scene]:
        out[UPRIGHT.format(receptacle)] = held_over(env, seed, receptacle)
        out[SPILLED.format(receptacle)] = held_over(env, seed, receptacle, spill=True)
        out[PAST.format(receptacle)] = poured_past(env, seed, receptacle)
    env.reset(seed=seed)
    out[STILL] = filmed(env, lambda k: np.zeros(env.action_space.shape, np.float32))
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
    columns = behaviours + [name.format(r) for name in (UPRIGHT, SPILLED, PAST) for r in SCENES[cfg.env.scene]] + [STILL]
    first = {(e.name, b, a): np.zeros(len(columns), int) for e in encoders for b in behaviours for a in ("as the demo", "mirrored")}
    returns = {(e.name, b): [] for e in encoders for b in behaviours}  # per scene, the returns of every column
    same_receptacle = [(a, b) for i, a in enumerate(behaviours) for b in behaviours[i + 1:]
                       if BEHAVIOURS[a].receptacle == BEHAVIOURS[b].receptacle]
    end_apart = {(e.name, a, b): [] for e in encoders for a, b in same_receptacle}  # per scene, share of a's course
    wrong, scene_sides = 0, []
    for k in tqdm(range(args.scenes), desc="scenes", unit="scene"):
        seed = FIRST_SCENE + k
        side = bowl_side(env, seed)
        scene_sides.append(side)
        played = performances(env, seed, behaviours)
        wrong += sum(done != (c if c in behaviours else "none") for c, (_, done) in played.items())
        for e in encoders:
            embs = {c: e(frames) for c, (frames, _) in played.items()}
            for a, b in same_receptacle:
                end_apart[e.name, a, b].append(end_states_apart(embs[a], embs[b]))
            for b in behaviours:
                r = np.array([episode_rewards(reward, embs[c], demo_emb[e.name, b], cfg.reward).sum() for c in columns])
                returns[e.name, b].append(r)
                first[e.name, b, "as the demo" if side == demo_side[b] else "mirrored"][int(np.argmax(r))] += 1
    env.close()
    print(f"\n{reward} reward; demos: " + ", ".join(f"{b} {ep.name} (bowl at y {demo_side[b]:+d})" for b, ep in demos.items())
          + f"; {args.scenes} scenes from seed {FIRST_SCENE}; scripted performances not performing what they should: {wrong}")
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
    print("\nA pour just past the demo's receptacle against the demo's own behaviour: mean return"
          " (scenes arranged as the demo's), and the scenes in which it earns more\n")
    print("| embedding | demo | own behaviour | past its receptacle | own - past | past higher |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for e in encoders:
        for b in behaviours:
            same = [r for r, side in zip(returns[e.name, b], scene_sides) if side == demo_side[b]]
            if not same:
                continue
            own, near = (np.array([r[columns.index(c)] for r in same]) for c in (b, PAST.format(BEHAVIOURS[b].receptacle)))
            print(f"| {e.name} | {b} | {own.mean():.3f} | {near.mean():.3f} | {own.mean() - near.mean():.3f} "
                  f"| {int((near > own).sum())} of {len(same)} |")
    if same_receptacle:
        print("\nBehaviours that pour into the same receptacle: the distance between their last frames' embeddings as a"
              " share of the first one's course (its first to its last frame), mean over scenes [min, max]\n")
        print("| embedding | behaviours | end states apart |")
        print("| --- | --- | ---: |")
        for (name, a, b), x in end_apart.items():
            print(f"| {name} | {a} / {b} | {np.mean(x):.3f} [{np.min(x):.3f}, {np.max(x):.3f}] |")


if __name__ == "__main__":
    main()
