"""Where the main job's time goes: every stage of ``tcn-robot pipeline`` and the inner loops inside them.

    python benchmarks/pipeline_profile.py [--config C] [--keep DIR] [key=value ...]

Runs the pipeline once in this process (one recording worker, one environment, so that the profiler
sees every call), then prints the wall and CPU time of each stage and the time of the inner loops
(physics, rendering, robot control, embedding, PPO updates, TCN steps, video encoding) as shares of the
whole run. The run itself, with the config's own worker and environment counts, is what
``tcn-robot pipeline`` reports in ``report.md``; this script says what inside it to make cheaper.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from tcn_robot.config import load_config
from tcn_robot.pipeline import run_pipeline

# inner loop -> the functions (file, name) whose cumulative time it is
LOOPS = {
    "physics": [("envs/sim.py", "step")],
    "rendering": [("envs/sim.py", "render")],
    "robot control (IK, joint targets, grip)": [("envs/robot.py", "command"), ("envs/robot.py", "substep")],
    "particle measurements": [("envs/task.py", "measure")],
    "world rebuild at reset": [("envs/task.py", "build")],
    "embedding frames for the reward": [("encoders.py", "step"), ("encoders.py", "restart")],
    "PPO updates": [("ppo/ppo.py", "train")],
    "TCN training (steps and validation)": [("train/engine.py", "fit")],
    "evaluation of encoders": [("evaluate/run.py", "run")],
    "video encoding": [("tcn_robot/video.py", "write")],
}


def loop_seconds(stats: pstats.Stats) -> dict[str, float]:
    found = {}
    for (file, _, func), (_, _, _, cumulative, _) in stats.stats.items():
        for name, targets in LOOPS.items():
            if any(func == fn and file.endswith(where) for where, fn in targets):
                found[name] = found.get(name, 0.0) + cumulative
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None)
    ap.add_argument("--keep", type=Path, default=None, help="write the run here instead of a temporary folder")
    ap.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = ap.parse_args()
    cfg = load_config(args.config, [*args.overrides, "record.workers=1", "rl.n_envs=1"])
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp) / "run"
        profile = cProfile.Profile()
        start = time.perf_counter()
        metrics = profile.runcall(run_pipeline, cfg, out)
        wall = time.perf_counter() - start
    stats = pstats.Stats(profile)
    print(f"# pipeline in one process: {wall / 60:.1f} min")
    print("| stage | wall min | CPU min |")
    print("| --- | ---: | ---: |")
    for name, s in metrics["stages"].items():
        print(f"| {name} | {s['wall_seconds'] / 60:.2f} | {s['cpu_seconds'] / 60:.2f} |")
    print()
    print("| inner loop (cumulative, overlapping) | seconds | share of the run |")
    print("| --- | ---: | ---: |")
    for name, seconds in sorted(loop_seconds(stats).items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {seconds:.1f} | {seconds / wall:.0%} |")


if __name__ == "__main__":
    main()
