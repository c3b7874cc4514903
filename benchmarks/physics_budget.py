"""What cheaper physics costs the task: control steps per second beside the scripted pours' figures,
for physics settings side by side (PourConfig keys), against the default world.

    python benchmarks/physics_budget.py [--seeds 10] [--variant "physics_hz=160 substeps=8" ...]

Per setting: control steps/s of a robot pour with the agent view rendered at 64 px (one process,
one core), the fraction in the bowl of the scripted human-proxy and robot pours (mean, and on how
many seeds >= 0.9, the demonstrator test's bar), what missed pours spill, and the particles that
cross the cup's wall (envs/checks.py; the default world has none). A setting is fit for a world
when these figures match the default's.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from omegaconf import OmegaConf

from tcn_robot.envs import PourEnv, run_demonstrator
from tcn_robot.envs.checks import watch_wall_crossings

VARIANTS = ["", "physics_hz=160 substeps=8", "physics_hz=160 substeps=8 solver_iterations=5", "physics_hz=120 substeps=6"]


def parse(variant: str) -> dict:
    """``"physics_hz=160 substeps=8"`` -> PourConfig overrides (typed by the schema when the env is built)."""
    return OmegaConf.to_container(OmegaConf.from_dotlist(variant.split()))


def steps_per_second(overrides: dict, seeds: int) -> float:
    env = PourEnv(**overrides)
    actions = [[s.action for s in run_demonstrator("robot", env, seed)] for seed in range(seeds)]
    steps, elapsed = 0, 0.0
    for seed, acts in enumerate(actions):
        env.reset(seed=seed)
        start = time.perf_counter()
        for a in acts:
            env.step(a)
            env.world.render([env.cfg.agent_view])
        elapsed += time.perf_counter() - start
        steps += len(acts)
    env.close()
    return steps / elapsed


def pours(overrides: dict, name: str, seeds: int, **kwargs) -> tuple[np.ndarray, np.ndarray, int]:
    """Final fraction in the bowl and spilled per seed, and wall crossings over all seeds."""
    env = PourEnv(embodiment="human" if name == "human" else "robot", **overrides)
    bowl, spilled, crossings = [], [], 0
    for seed in range(seeds):
        steps = run_demonstrator(name, env, seed, **kwargs)  # resets the world
        watch = watch_wall_crossings(env.world)
        for step in steps:
            pass
        crossings += watch["count"]
        bowl.append(step.info["fraction_in_bowl"])
        spilled.append(step.info["fraction_spilled"])
    env.close()
    return np.array(bowl), np.array(spilled), crossings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--variant", action="append", default=None, help="space-separated PourConfig key=value (empty: the default)")
    args = ap.parse_args()
    print("| physics | control steps/s | speed-up | human pour in bowl (>= 0.9) | robot pour in bowl (>= 0.9) "
          "| missed pours spilled | wall crossings |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    base = None
    for variant in args.variant or VARIANTS:
        o = parse(variant)
        rate = steps_per_second(o, 3)
        base = base or rate
        cells = []
        crossings = 0
        for name in ("human", "robot"):
            bowl, _, c = pours(o, name, args.seeds, partial_prob=0.0, miss_prob=0.0)
            crossings += c
            cells.append(f"{bowl.mean():.2f} ({np.sum(bowl >= 0.9)}/{len(bowl)})")
        _, spilled, _ = pours(o, "robot", min(args.seeds, 4), partial_prob=0.0, miss_prob=1.0)
        print(f"| {variant or 'default'} | {rate:.0f} | {rate / base:.2f} | {' | '.join(cells)} | {spilled.mean():.2f} "
              f"| {crossings} |", flush=True)


if __name__ == "__main__":
    main()
