"""What each scripted demonstrator achieves on each behaviour of a scene of several pouring tasks.

    python benchmarks/behaviours.py --seeds 20 [env overrides as key=value, e.g. physics_hz=240 substeps=12]

Per behaviour and demonstrator (no misses): the mean and lowest score on the behaviour asked for and how
often each behaviour was performed (envs/behaviours.py), from the simulator's ground truth.
"""
from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
from omegaconf import OmegaConf

from tcn_robot.envs import FAMILY, PourEnv, run_demonstrator
from tcn_robot.envs.behaviours import behaviours_of, performed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("overrides", nargs="*", help="PourConfig fields as key=value (default: the family config's world)")
    args = p.parse_args()
    world = {**FAMILY, "physics_hz": 120.0, "substeps": 6, **OmegaConf.to_container(OmegaConf.from_dotlist(args.overrides))}
    envs = {e: PourEnv(world, embodiment=e) for e in ("human", "robot")}
    scene = envs["robot"].cfg.scene
    print("| behaviour | demonstrator | mean score | lowest | performed |")
    print("| --- | --- | ---: | ---: | --- |")
    for b in behaviours_of(scene):
        for name, env in envs.items():
            scores, done = [], Counter()
            for seed in range(args.seeds):
                for step in run_demonstrator(name, env, seed, behaviour=b, miss_prob=0.0):
                    pass
                scores.append(step.info["goal_score"])
                done[performed(env.measurement.fractions, scene)] += 1
            print(f"| {b} | {name} | {np.mean(scores):.2f} | {np.min(scores):.2f} | "
                  + ", ".join(f"{k} {v}" for k, v in done.most_common()) + " |", flush=True)


if __name__ == "__main__":
    main()
