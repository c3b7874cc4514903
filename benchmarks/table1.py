"""The simulated Table I of the TCN paper with every method: trains each on the same data with the same
budget, evaluates all of them in one ``tcn-robot evaluate`` call beside the untrained baselines, and
prints one table (also written to OUT/table1.md).

    python benchmarks/table1.py --config configs/table1.yaml --data runs/data_train --heldout runs/data_heldout \\
        --out runs/table1 [--jobs 2] [--only tcn-mv-infonce simclr ...] [--demo EPISODE] [--last] [key=value ...]

Runs already finished in OUT are kept and interrupted ones resumed, so the same command continues an
interrupted comparison. Each run's ``best.pt`` is the checkpoint ``train.select_best`` kept;
``--last`` also evaluates each run's final checkpoint, as ``NAME@last`` (a pretext method's best
alignment can come before it has learned its own task). ``key=value`` overrides (``train.steps=3000``)
apply to every training and to the evaluation. With ``--jobs J`` J trainings run at once, each with
cores / J threads (``--threads``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from tcn_robot.config import load_config
from tcn_robot.methods import METHODS

# name -> (command, extra arguments): the TCN variants of the paper, then every pretext method
RUNS = {
    "tcn-sv-triplet": ("train-tcn", ["--mode", "singleview", "--loss", "triplet"]),
    "tcn-mv-triplet": ("train-tcn", ["--mode", "multiview", "--loss", "triplet"]),
    "tcn-mv-npairs": ("train-tcn", ["--mode", "multiview", "--loss", "npairs"]),
    "tcn-mv-infonce": ("train-tcn", ["--mode", "multiview", "--loss", "infonce"]),
    "tcn-mv-lifted": ("train-tcn", ["--mode", "multiview", "--loss", "lifted"]),
    **{name: ("pretrain", ["--method", name]) for name in METHODS if name != "tcn"},
}
BASELINES = ("random", "random-features", "pixels")
SCRIPT = str(Path(sys.executable).with_name("tcn-robot"))


def train(name: str, args, steps: int, threads: int) -> dict:
    """Train (or resume, or keep) the run ``name``; returns its metrics."""
    run = args.out / name
    metrics = run / "metrics.json"
    if metrics.is_file() and json.loads(metrics.read_text()).get("steps") == steps:
        return json.loads(metrics.read_text())
    command, extra = RUNS[name]
    cmd = [SCRIPT, command, "--config", str(args.config), "--data", str(args.data), "--out", str(run), *extra, *args.overrides]
    if (run / "checkpoints" / "last.pt").is_file():
        cmd.append("--resume")
    elif run.exists():
        cmd.append("--overwrite")  # started, killed before its first checkpoint
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with open(args.out / f"{name}.log", "a") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    return json.loads(metrics.read_text())


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def num(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def table(results: dict, runs: dict) -> str:
    """One row per encoder of ``results``: the untrained baselines first, then the checkpoints of ``runs``
    (name -> the run's metrics and ``val``, the validation at the checkpoint's step) in their order."""
    rows = ["| encoder | alignment error % | classification error % same / cross view | linear probe error % | Kendall tau "
            "| reward Spearman (same / cross view) | pretext error % (chance) | training frames/s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in [n for n in results if n not in runs] + [n for n in runs if n in results]:
        m, run = results[name], runs.get(name, {})
        val = run.get("val", {})
        pretext = f"{pct(val.get('pretext_error'))} ({pct(val.get('pretext_chance_error'))})" if "pretext_error" in val else "-"
        fps = f"{run['frames_per_second']:.0f}" if run.get("frames_per_second") else "-"
        rs, rc = m.get("reward_same_view", {}), m.get("reward_cross_view", {})
        rows.append(f"| {name} | {pct(m.get('alignment_error'))} | {pct(m.get('classification_error_same_view'))} / "
                    f"{pct(m.get('classification_error_cross_view'))} | {pct(m.get('linear_probe_error'))} | "
                    f"{num(m.get('kendall_tau_same_view'))} | {num(rs.get('spearman_return_vs_poured'))} / "
                    f"{num(rc.get('spearman_return_vs_poured'))} | {pretext} | {fps} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="training dataset")
    ap.add_argument("--heldout", type=Path, required=True, help="held-out dataset (evaluation, the demo)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--demo", type=Path, default=None, help="the reward's demo episode (default: the held-out set's first human pour)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="threads per training (default: cores / jobs)")
    ap.add_argument("--last", action="store_true", help="also evaluate each run's final checkpoint (NAME@last)")
    ap.add_argument("--only", nargs="+", choices=list(RUNS), default=list(RUNS))
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every run")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    steps = load_config(args.config, args.overrides).train.steps
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:
        finished = dict(zip(args.only, pool.map(lambda n: train(n, args, steps, threads), args.only)))
    checkpoints = {}  # evaluated name -> (run, checkpoint file)
    for n in args.only:
        checkpoints[n] = (n, args.out / n / "checkpoints" / "best.pt")
        if args.last:
            checkpoints[f"{n}@last"] = (n, args.out / n / "checkpoints" / "last.pt")
    evaluate = [SCRIPT, "evaluate", "--config", str(args.config), "--data", str(args.heldout), "--out", str(args.out / "evaluate"),
                "--overwrite", *args.overrides, *[a for b in BASELINES for a in ("--baseline", b)],
                *[a for name, (_, path) in checkpoints.items() for a in ("--checkpoint", f"{name}={path}")]]
    if args.demo:
        evaluate += ["--demo", str(args.demo)]
    subprocess.run(evaluate, check=True)
    results = json.loads((args.out / "evaluate" / "metrics.json").read_text())["encoders"]
    runs = {}
    for name, (n, path) in checkpoints.items():
        state = torch.load(path, weights_only=True, map_location="cpu")
        val = next((v for v in state["val_log"] if v["step"] == state["step"]), {})
        runs[name] = {**finished[n], "val": val}
    text = table(results, runs)
    (args.out / "table1.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
