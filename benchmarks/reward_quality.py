"""Every learned reward without RL, over several TCNs: for each pipeline folder (its TCN, held-out data
and demo), ``tcn-robot evaluate``'s reading of every reward kind (the pipeline's own evaluation, or a new
one with the ``--set key=value`` overrides given), and a table per kind over the runs:
the rank correlation of held-out returns with the fraction poured, and the scripted probes (the demo's
cup path replayed at its pace, 0.7x, 1.4x and started at once, against an upright carry, a pour past
the bowl, a spill short of it and standing still): in how many runs every pour scores above every
non-pour, the worst margin, and each probe's mean return over the runs.

    python benchmarks/reward_quality.py --out runs/reward_quality runs/q_s0 runs/q_s1 runs/q_s2 [--set reward.quantile=0.05 ...]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tcn_robot.evaluate.probes import PROBES
from tcn_robot.reward import LEARNED

TCN_ROBOT = str(Path(sys.executable).with_name("tcn-robot"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, nargs="+", help="pipeline folders")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE",
                   help="config overrides for a new evaluation in --out (e.g. reward.quantile=0.05)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    readings = {}
    for run in args.runs:
        out = args.out / run.name if args.overrides else run / "evaluate"
        if not (out / "metrics.json").is_file():
            demo = json.loads((run / "evaluate" / "metrics.json").read_text())["demo"]
            subprocess.run([TCN_ROBOT, "evaluate", "--config", str(run / "config.yaml"), "--checkpoint",
                            f"TCN={run / 'tcn' / 'checkpoints' / 'best.pt'}", "--data", str(run / "data_heldout"),
                            "--demo", str(run / "data_heldout" / demo), "--out", str(out), *args.overrides], check=True,
                           stdout=subprocess.DEVNULL)
        readings[run.name] = json.loads((out / "metrics.json").read_text())["encoders"]["TCN"]["reward_kinds"]
    rows = ["| reward | Spearman of return vs poured (mean over runs) | runs with every pour above every non-pour | worst margin | "
            + " | ".join(PROBES) + " |", "| --- | ---: | ---: | ---: |" + " ---: |" * len(PROBES)]
    for kind in LEARNED:
        per = [r[kind] for r in readings.values()]
        rho = [k["spearman_return_vs_poured"] for k in per if k["spearman_return_vs_poured"] is not None]
        ranked = [k for k in per if "pours_above_others" in k]
        means = [np.mean([k["probe_returns"][p] for k in ranked]) for p in PROBES] if ranked else []
        rows.append(f"| {kind} | {np.mean(rho):.2f} | {sum(k['pours_above_others'] for k in ranked)} of {len(ranked)} "
                    f"| {min(k['margin'] for k in ranked):.2f} | " + " | ".join(f"{m:.3g}" for m in means) + " |")
    table = "\n".join(rows)
    (args.out / "reward_quality.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
