"""What a trained policy's critic thinks of scripted behaviours: the value V(s_t) that the last PPO
policy of each ``train-rl`` run gives the states of the scripted behaviours of
``reward_landscape.py``, against standing still at the same step.

    python benchmarks/value_probe.py --config C --policy RUN [--policy RUN ...] [--seeds 4]

For each run and behaviour: mean over steps 10-59 (while the scripted pours pour) of
V(behaviour, t) - V(stand still, t), in units of the critic's span over a standing-still episode
|V(still, T-1) - V(still, 0)|, averaged over scenes (``PourEnv`` seeds 5000 ..). Under a reward
that is constant per step the return depends on t alone, so a critic that fits it gives every
behaviour about 0; a critic that has learned the TCN reward puts pours above standing still.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from reward_landscape import BEHAVIOURS, Policy, play

from tcn_robot.config import load_config

STEPS = slice(10, 60)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", action="append", required=True, help="a train-rl run folder (PPO) whose last critic to probe")
    p.add_argument("--config", default=None, help="the config of the env")
    p.add_argument("--seeds", type=int, default=4)
    args = p.parse_args()
    cfg = load_config(args.config)
    policies = {Path(run).name: Policy(Path(run)) for run in args.policy}
    episodes = {name: [play(cfg, 5000 + s, b) for s in range(args.seeds)] for name, b in BEHAVIOURS.items()}
    t = np.arange(cfg.env.episode_steps)
    names = [n for n in BEHAVIOURS if n != "stand still"]
    short = [n.replace(", start at", "").replace("where it stands", "").replace(" from the bowl", "").replace("carry ", "").strip() for n in names]
    print(f"{'run':22s} {'span':>6s} " + " ".join(f"{n:>13s}" for n in short))
    for run, policy in policies.items():
        with torch.no_grad():
            values = {n: np.mean([policy.model.policy.predict_values(torch.as_tensor(policy.observe(states, frames[:-1], t))).numpy()[:, 0]
                                  for states, frames, _ in eps], axis=0) for n, eps in episodes.items()}
        still = values["stand still"]
        span = abs(still[-1] - still[0])
        rel = [np.mean(values[n][STEPS] - still[STEPS]) / span for n in names]
        print(f"{run:22s} {span:6.2f} " + " ".join(f"{r:+13.2f}" for r in rel), flush=True)


if __name__ == "__main__":
    main()
