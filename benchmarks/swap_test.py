"""The swap test: does the demo decide what the robot does? (DVD, Chen et al. 2021; RoboCLIP, Sontakke et al. 2023)

On a pipeline run of a scene with several pouring tasks (``tcn-robot pipeline --config family``), for each
behaviour the first successful held-out human-proxy demo of it (or the one ``--demo BEHAVIOUR=EPISODE`` names),
and PPO against it for several RL seeds (``tcn-robot train-rl`` on the pipeline's TCN). The result is a confusion matrix: rows the demonstrated
behaviour, columns the behaviour each policy performs (by the ground-truth fractions of its 10 evaluation
episodes; envs/behaviours.py), each cell the mean share over seeds with its 95% bootstrap interval. Arms:

- ``learned``: the pipeline's reward (rl.reward of its config) against the demo;
- ``goal``: XIRL's goal distance against the same demo;
- ``blind``: the pipeline's reward against the demo of *another* behaviour (the next one in order), a control that
  shows what the demo contributes: its matrix must have no diagonal. A run against another behaviour's demo is that
  behaviour's ``learned`` run (same demo, arrangement, reward and seed; the behaviour the env scores plays no part in
  training or in the behaviour performed), so this arm reads those runs back (or trains them into ``learned/``) and
  files each under the behaviour the robot was meant to perform.

``--arrangement demo`` films the robot in its demo's arrangement (``env.bowl_side``: the bowl on the side it stood in
the demo, the rest of the scene drawn at every reset) and takes by default every behaviour's first successful demo
of one arrangement (the first behaviour's demo's, else the other): every row is one arrangement, only the demo differs.
``--row BEHAVIOUR`` (repeatable) runs only those rows.

    python benchmarks/swap_test.py --out runs/swap --pipeline runs/fam --seeds 0-2 --arm learned --arm blind

Resumable (a finished run is read back, an interrupted one resumed). Writes ``summary.json``, per arm a heat map
``ARM_confusion.png`` and ``ARM_strips.png`` (each demo's frames beside its policy's, RL seed of the first run),
and prints each matrix.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reward_choice import bowl_side  # noqa: E402
from seeds import resuming, run, seeds  # noqa: E402

from tcn_robot import UserError  # noqa: E402
from tcn_robot.config import load_config  # noqa: E402
from tcn_robot.data.episodes import Dataset, choose_demo, load_episode  # noqa: E402
from tcn_robot.envs import PourEnv  # noqa: E402
from tcn_robot.envs.behaviours import NONE, behaviours_of  # noqa: E402
from tcn_robot.evaluate import plots  # noqa: E402
from tcn_robot.stats import bootstrap_ci  # noqa: E402

ARMS = ("learned", "goal", "blind")


def train(pipeline: Path, out: Path, demo: Path, behaviour: str, seed: int, reward: str, steps: int | None,
          overrides: list[str]) -> dict:
    """One PPO run (resumed if interrupted) and its final evaluation."""
    if not (out / "metrics.json").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        run(["train-rl", "--config", str(pipeline / "config.yaml"), "--out", str(out),
             *resuming(out),
             "--encoder", str(pipeline / "tcn" / "checkpoints" / "best.pt"), "--demo", str(demo), "--reward", reward,
             "--seed", str(seed), *(["--steps", str(steps)] if steps else []), f"env.behaviour={behaviour}", *overrides],
            out.parent / f"{out.name}.log")
    return json.loads((out / "metrics.json").read_text())["final_eval"]


def matrix(shares: dict[str, list[np.ndarray]], columns: list[str]) -> dict:
    """Per demonstrated behaviour, the mean over runs of each performed behaviour's share, and its interval."""
    rows = {}
    for shown, runs in shares.items():
        x = np.stack(runs)  # (runs, columns)
        cis = [bootstrap_ci(x[:, c], statistic=np.mean, reps=10_000) for c in range(len(columns))]
        rows[shown] = {"mean": x.mean(0).tolist(), "ci95": [list(ci) for ci in cis], "runs": len(runs)}
    return {"columns": columns, "rows": rows}


def strips(images: dict[str, Path], path: Path, title: str) -> None:
    """The replay strips (demo above, policy below) of each row, stacked, titled by ``images``' keys."""
    fig, axes = plt.subplots(len(images), 1, figsize=(11, 3.2 * len(images)), squeeze=False)
    for ax, (row, png) in zip(axes[:, 0], images.items()):
        ax.imshow(mpimg.imread(png))
        ax.set_axis_off()
        ax.set_title(row, fontsize=11, loc="left")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pipeline", type=Path, required=True, help="a pipeline folder of a scene with several behaviours")
    p.add_argument("--seeds", default="0-2", help="RL seeds per behaviour: 0-2 or 0,3")
    p.add_argument("--arm", choices=ARMS, action="append", help=f"repeatable; default: all of {', '.join(ARMS)}")
    p.add_argument("--steps", type=int, help="PPO steps per run (default: the pipeline config's rl.steps)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override of every PPO run")
    p.add_argument("--demo", action="append", default=[], metavar="BEHAVIOUR=EPISODE",
                   help="the demo of a behaviour (default: the pipeline's first successful held-out human-proxy one)")
    p.add_argument("--row", action="append", metavar="BEHAVIOUR", help="repeatable; default: every behaviour's row")
    p.add_argument("--arrangement", choices=("drawn", "demo"), default="drawn",
                   help="the robot's scene: its sides drawn at every reset, or the demo's (env.bowl_side)")
    args = p.parse_args()
    cfg = load_config(args.pipeline / "config.yaml")
    behaviours = list(behaviours_of(cfg.env.scene))
    if len(behaviours) < 2:
        p.error(f"{args.pipeline}: its scene {cfg.env.scene!r} allows one behaviour; the swap test needs several")
    rows = args.row or behaviours
    if unknown := sorted(set(rows) - set(behaviours)):
        p.error(f"--row {', '.join(unknown)}: the scene's behaviours are {', '.join(behaviours)}")
    heldout = args.pipeline / "data_heldout"
    episodes = Dataset.open(heldout).episodes
    named = dict(d.split("=", 1) for d in args.demo)
    demos = {b: Path(named[b]) if b in named else choose_demo(episodes, heldout, b).path for b in behaviours}
    sides = {}
    if args.arrangement == "demo":
        env = PourEnv(cfg.env)
        side_of = {ep.path: bowl_side(env, int(ep.meta["seed"])) for ep in episodes}  # each scene rebuilt once
        side_of.update({d: bowl_side(env, int(load_episode(d).meta["seed"])) for d in demos.values() if d not in side_of})
        env.close()
        first = side_of[demos[behaviours[0]]]
        for s in (first, -first):  # the first behaviour's demo's arrangement, unless another behaviour has no demo in it
            try:
                same = [ep for ep in episodes if side_of[ep.path] == s]
                demos.update({b: choose_demo(same, heldout, b).path for b in behaviours if b not in named})
                break
            except UserError:
                if s == -first:
                    raise
        sides = {b: side_of[d] for b, d in demos.items()}
    columns = behaviours + [NONE]
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"pipeline": str(args.pipeline), "demos": {b: str(d) for b, d in demos.items()}, "seeds": seeds(args.seeds),
               "arrangement": args.arrangement, "bowl_side": sides or None}
    for arm in args.arm or ARMS:
        reward = "goal" if arm == "goal" else cfg.rl.reward
        shares, images = {}, {}
        for k, shown in enumerate(behaviours):
            if shown not in rows:
                continue
            given = behaviours[(k + 1) % len(behaviours)] if arm == "blind" else shown
            runs = args.out / ("learned" if arm == "blind" else arm)
            scene = [f"env.bowl_side={sides[given]}"] if sides else []
            shares[shown] = []
            for s in seeds(args.seeds):
                final = train(args.pipeline, runs / f"{given}_s{s}", demos[given], given, s, reward, args.steps,
                              [*scene, *args.set])
                done = final["behaviour_performed"]
                shares[shown].append(np.array([done.count(c) / len(done) for c in columns]))
            first = runs / f"{given}_s{seeds(args.seeds)[0]}"
            replay = first.with_name(f"{first.name}_replay")
            if not (replay / "metrics.json").is_file():
                run(["replay", "--run", str(first), "--out", str(replay), "--episodes", "1", "--overwrite"],
                    runs / f"{replay.name}.log")
            images[f"to perform: {shown}, demo of: {given}" if arm == "blind" else f"demonstrated: {shown}"] = \
                replay / "episode_0_strip.png"
        m = matrix(shares, columns)
        summary[arm] = {"reward": reward, **m}
        counts = np.array([m["rows"][b]["mean"] for b in rows])
        plots.confusion_matrix(counts, rows, columns, args.out / f"{arm}_confusion.png",
                               f"swap test, {arm} ({reward} reward), mean share over {len(seeds(args.seeds))} seeds",
                               "demonstrated", "performed", show_counts=False)
        strips(images, args.out / f"{arm}_strips.png", f"swap test, {arm}: each row's demo (top) and its policy (bottom)")
        print(f"\n{arm} ({reward} reward against {'another behaviour' if arm == 'blind' else 'the'} demo), "
              f"share of evaluation episodes, mean over seeds {seeds(args.seeds)} [95% CI]:")
        print("| demonstrated | " + " | ".join(columns) + " |")
        print("| --- |" + " ---: |" * len(columns))
        for b in rows:
            r = m["rows"][b]
            print(f"| {b} | " + " | ".join(f"{v:.2f} [{lo:.2f}, {hi:.2f}]" for v, (lo, hi) in zip(r["mean"], r["ci95"])) + " |")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
