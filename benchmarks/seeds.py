"""Seed statistics of named recipes, as RL research reports them: per recipe, the interquartile mean of
the final fraction poured over seeds, its 95% stratified-bootstrap interval and the worst seed
(``tcn_robot/stats.py``, rliable's estimators; Agarwal et al. 2021).

Two modes, each resumable (a finished run is read back, an interrupted one resumed):

    # whole pipelines, one per seed, for each recipe (NAME=overrides, quoted; "" for the packaged config)
    python benchmarks/seeds.py pipeline --out runs/seeds_qs --seeds 10-14 --recipe quickstart=""
    # PPO on fixed TCNs (pipeline folders, their config's reward unless a recipe names another), RL seeds per
    # TCN, overrides per recipe; --pace trains against the pipeline's demo played at that pace (frames resampled)
    python benchmarks/seeds.py rl --out runs/seeds_rl --runs runs/seeds_qs/quickstart/s1{0..4} --seeds run \
        --recipe progress="" --pace 0.7 --pace 1.4
    # the demo from cameras never trained on (a set recorded by --config novel_rig --heldout), its view 0
    python benchmarks/seeds.py rl --out runs/seeds_cam --runs runs/seeds_qs/quickstart/s1{0..2} --seeds run \
        --recipe novel="" --demo-data runs/heldout_novel --demo-view 0
    # TCN seeds x RL seeds: each pipeline's own PPO run and two more RL seeds per TCN
    python benchmarks/seeds.py pipeline --out runs/seeds_u --seeds 20-22 --recipe unpaired="--config unpaired"
    python benchmarks/seeds.py rl --out runs/seeds_u --runs runs/seeds_u/unpaired/s2{0..2} --seeds run,101,102 --recipe unpaired=""

Prints one table row per recipe (and pace), in pipeline mode a second one per recipe and seed (its stages' minutes,
its TCN's held-out figures and its reward's quality without RL), and writes ``summary.json`` in ``--out``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tcn_robot.config import load_config
from tcn_robot.data.episodes import Dataset, EpisodeWriter, choose_demo, load_episode
from tcn_robot.stats import summary

TCN_ROBOT = str(Path(sys.executable).with_name("tcn-robot"))


def seeds(text: str, own: int | None = None) -> list[int]:
    """``10-14``, ``0,3,7`` or both (``run,101,102``: ``run`` is ``own``, a pipeline's own RL seed)."""
    out = []
    for part in text.split(","):
        if part == "run" and own is not None:
            out.append(own)
        elif "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def run(argv: list[str], log: Path) -> float:
    """One tcn-robot command (its output to ``log``); its wall time in seconds."""
    started = time.perf_counter()
    with open(log, "a") as f:
        done = subprocess.run([TCN_ROBOT, *argv], stdout=f, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - started


def resuming(folder: Path) -> list[str]:
    """``["--resume"]`` where a run was started in ``folder`` (it saved its config; ``--resume`` starts one
    stopped before its first checkpoint again from 0), else ``[]``."""
    return ["--resume"] if (folder / "config.yaml").is_file() else []


def resample_demo(src: Path, dst: Path, pace: float) -> Path:
    """The demo ``src`` played ``pace`` times as fast (frame k of the copy is frame round(k * pace) of
    the original, to its end), written as the episode ``dst`` beside its states' resampled rows."""
    if (dst / "meta.json").is_file():
        return dst
    ep = load_episode(src)
    index = np.rint(np.arange(0, ep.num_frames - 1 + 1e-9, pace)).astype(int)
    views = [ep.read_view(v)[index] for v in range(ep.num_views)]
    states = ep.states()
    rows = {k: v[np.minimum(index, len(v) - 1)] for k, v in states.items()} if states is not None else None
    dst.parent.mkdir(parents=True, exist_ok=True)
    writer = EpisodeWriter(dst.parent, dst.name, ep.num_views, ep.meta["fps"], ep.image_size)
    for t in range(len(index)):
        writer.add([v[t] for v in views])
    meta = {k: v for k, v in ep.meta.items() if k not in ("format", "num_views", "num_frames", "has_states", "codec")}
    writer.commit({**meta, "name": dst.name, "pace": pace, "resampled_from": str(src)}, rows)
    return dst


def final_fraction(metrics: Path) -> float:
    m = json.loads(metrics.read_text())
    return float((m["train_rl"] if "train_rl" in m else m)["final_eval"]["fraction_in_bowl_mean"])


def pipeline_row(folder: Path) -> dict:
    """One pipeline's score beside what made it: its stages' minutes, its TCN's figures on the held-out
    episodes and the quality without RL of the reward its policy was trained on (evaluate/metrics.json)."""
    m = json.loads((folder / "metrics.json").read_text())
    tcn = json.loads((folder / "evaluate" / "metrics.json").read_text())["encoders"]["TCN"]
    kind = load_config(folder / "config.yaml").rl.reward
    reward = tcn.get("reward_kinds", {}).get(kind, {})
    final = m["train_rl"]["final_eval"]
    stages = {k: v["wall_seconds"] / 60 for k, v in m["stages"].items()}
    return {"minutes": m["wall_seconds"] / 60, "record_min": stages["record the dataset"], "tcn_min": stages["train the TCN"],
            "ppo_min": stages["train a policy on the learned reward"], "alignment_error": tcn["alignment_error"],
            "kendall_tau_cross_view": tcn["kendall_tau_cross_view"],
            "classification_error_same_view": tcn["classification_error_same_view"], "reward": kind,
            "reward_spearman": reward.get("spearman_return_vs_poured"), "pours_above_others": reward.get("pours_above_others"),
            "reward_margin": reward.get("margin"), "in_bowl": final["fraction_in_bowl_mean"], "success": final.get("success_rate")}


def pipeline_mode(args) -> dict:
    out = {}
    for name, overrides in args.recipe:
        rows = {}
        for s in seeds(args.seeds):
            folder = args.out / name / f"s{s}"
            if not (folder / "metrics.json").is_file():
                run(["pipeline", "--out", str(folder), "--seed", str(s), *shlex.split(overrides)], args.out / f"{name}_s{s}.log")
            rows[s] = pipeline_row(folder)
        out[name] = {**summary([r["in_bowl"] for r in rows.values()]), "seeds": seeds(args.seeds), "per_seed": rows}
    return out


def print_per_seed(results: dict) -> None:
    """A pipeline mode's second table: one row per recipe and seed."""
    print("\n| recipe | seed | minutes (record / TCN / PPO) | held-out alignment error % | Kendall tau, cross view "
          "| classification error %, same view | reward: Spearman of return vs poured; every probe pour above every non-pour (margin) "
          "| in the bowl (success) |")
    print("| --- | ---: | --- | ---: | ---: | ---: | --- | --- |")
    for name, r in results.items():
        for s, x in r["per_seed"].items():
            quality = (f"{x['reward']}: {x['reward_spearman']:.2f}; {'yes' if x['pours_above_others'] else 'no'} ({x['reward_margin']:.2f})"
                       if x["reward_margin"] is not None else f"{x['reward']}: -")
            print(f"| {name} | {s} | {x['minutes']:.1f} ({x['record_min']:.1f} / {x['tcn_min']:.1f} / {x['ppo_min']:.1f}) "
                  f"| {100 * x['alignment_error']:.1f} | {x['kendall_tau_cross_view']:.2f} | {100 * x['classification_error_same_view']:.1f} "
                  f"| {quality} | {x['in_bowl']:.2f} ({x['success']:.1f}) |")


def rl_mode(args) -> dict:
    out = {}
    for name, overrides in args.recipe:
        for pace in args.pace or [1.0]:
            label = name if pace == 1.0 else f"{name}, demo at {pace}x"
            scores = []
            for folder in args.runs:
                metrics = json.loads((folder / "evaluate" / "metrics.json").read_text())
                demo = (choose_demo(Dataset.open(args.demo_data).episodes, args.demo_data).path if args.demo_data
                        else folder / "data_heldout" / metrics["demo"])
                if pace != 1.0:
                    demo = resample_demo(demo, args.out / "demos" / f"{folder.name}_{metrics['demo']}_x{pace}", pace)
                own = int(json.loads((folder / "metrics.json").read_text())["train_rl"]["seed"])
                for s in seeds(args.seeds, own):
                    if s == own and pace == 1.0 and not overrides.strip() and not args.demo_data:  # the pipeline's own PPO run
                        scores.append(final_fraction(folder / "metrics.json"))
                        continue
                    rl = args.out / f"{name}_x{pace}" / f"{folder.name}_r{s}"
                    if not (rl / "metrics.json").is_file():
                        run(["train-rl", "--config", str(folder / "config.yaml"), "--out", str(rl),
                             *resuming(rl),
                             "--encoder", str(folder / "tcn" / "checkpoints" / "best.pt"), "--demo", str(demo),
                             "--seed", str(s), *(["--demo-view", str(args.demo_view)] if args.demo_view is not None else []),
                             *shlex.split(overrides)], args.out / f"{rl.parent.name}_{rl.name}.log")
                    scores.append(final_fraction(rl / "metrics.json"))
            out[label] = {**summary(scores), "tcns": [str(r) for r in args.runs], "seeds": args.seeds}
    return out


def recipe(text: str) -> tuple[str, str]:
    name, _, overrides = text.partition("=")
    return name, overrides


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["pipeline", "rl"])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", required=True,
                   help="pipeline seeds, or RL seeds per TCN: 10-14 or 0,1,2 (rl: `run` is each pipeline's own RL seed, "
                        "whose PPO run is the pipeline's when neither pace nor overrides differ: run,101,102)")
    p.add_argument("--recipe", type=recipe, action="append", required=True, help='NAME="overrides and flags"')
    p.add_argument("--runs", type=Path, nargs="*", default=[], help="rl: pipeline folders whose TCN, data and demo to use")
    p.add_argument("--pace", type=float, action="append", help="rl: play the demo at this pace (repeatable)")
    p.add_argument("--demo-data", type=Path, help="rl: the demo is this dataset's first successful human-proxy pour "
                                                  "(e.g. one recorded by cameras never trained on), not each pipeline's")
    p.add_argument("--demo-view", type=int, help="rl: the demo's camera (rl.demo_view)")
    args = p.parse_args()
    if "run" in args.seeds.split(",") and args.mode == "pipeline":
        p.error("--seeds run (each pipeline's own RL seed) is for rl mode; pipeline mode needs seeds such as 10-14")
    args.out.mkdir(parents=True, exist_ok=True)
    results = pipeline_mode(args) if args.mode == "pipeline" else rl_mode(args)
    previous = json.loads((args.out / "summary.json").read_text()) if (args.out / "summary.json").is_file() else {}
    (args.out / "summary.json").write_text(json.dumps({**previous, **results}, indent=2) + "\n")
    print("| recipe | runs | IQM of the fraction in the bowl | 95% CI | mean | worst seed | per seed |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, r in results.items():
        print(f"| {name} | {r['runs']} | {r['iqm']:.2f} | [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] | {r['mean']:.2f} | {r['worst']:.2f} "
              f"| {' / '.join(f'{s:.2f}' for s in r['scores'])} |")
    if args.mode == "pipeline":
        print_per_seed(results)


if __name__ == "__main__":
    main()
