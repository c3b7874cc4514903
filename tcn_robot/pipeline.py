"""Run every stage end to end: record -> train-tcn -> evaluate -> train-rl -> replay.

Layout of ``OUT``: ``config.yaml`` (resolved), ``demo/multiview.mp4`` (a scripted human-proxy
pour, every camera side by side), ``data/`` (training episodes), ``data_heldout/`` (new seeds and
camera placements, for evaluation and the demonstration the policy imitates), ``tcn/`` (the TCN
run), ``evaluate/`` (the TCN against random-init and pixel baselines), ``rl/`` (PPO on the TCN
reward against one held-out human-proxy video), ``replay/`` (the policy's episodes beside the
demo), ``metrics.json`` and ``report.md`` linking every figure and video. Re-running the same
command resumes: recordings keep complete episodes, training continues from its last checkpoint,
finished stages are kept.
"""
from __future__ import annotations

import contextlib
import resource
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dataclasses import replace

from . import UserError, runs
from .config import Config, resume_changes, save_config
from .data.episodes import Dataset, choose_demo
from .data.record import record_dataset
from .envs import ATTRIBUTES, PourEnv, run_demonstrator
from .evaluate.run import evaluate
from .io import atomic_write_text, read_json, write_json
from .replay import replay
from .reward import LEARNED
from .rl import pinned_files, train_rl
from .train.tcn import train_tcn
from .video import VideoWriter


@runs.owns_outputs
def run_pipeline(cfg: Config, out: str | Path, overwrite: bool = False) -> dict:
    """Run the chain into ``out``; returns the metrics written to ``out/metrics.json``. Running it
    again on the same folder resumes (with the same config; only budgets may grow), ``overwrite``
    starts afresh."""
    out = Path(out)
    if cfg.rl.reward not in LEARNED:
        raise UserError(f"rl.reward={cfg.rl.reward}: the pipeline imitates a demo; choose a learned reward ({', '.join(LEARNED)})")
    mode = runs.check_output(out, "pipeline", overwrite=overwrite)
    if mode == "resume" and (out / runs.CONFIG).is_file():
        changes = resume_changes(out, cfg, "pipeline")
        if changes:
            runs.record_resume(out, 0, changes)
    runs.claim_output(out, "pipeline", mode)
    save_config(cfg, out)
    started = time.perf_counter()
    metrics: dict = {"stages": {}}
    stage = StageClock(metrics["stages"])

    where = {stage: out / name for stage, name in runs.PIPELINE.items()}
    with stage("human-proxy demonstration video"):
        metrics["demo"] = record_demo_video(cfg, where["demo_video"])

    r, p = cfg.record, cfg.pipeline
    with stage("record the dataset"):
        metrics["record"] = record_dataset(cfg.env, where["data"], r.episodes, r.views, r.image_size, r.seed, r.demonstrators,
                                           workers=r.workers, behaviours=r.behaviours)

    with stage("record held-out episodes"):
        metrics["record_heldout"] = record_dataset(cfg.env, where["heldout"], r.heldout_episodes, r.views, r.image_size,
                                                   r.heldout_seed, r.heldout_demonstrators or r.demonstrators, workers=r.workers,
                                                   behaviours=r.behaviours)

    with stage("train the TCN"):
        metrics["train_tcn"] = _resumable(where["tcn"], cfg.train.steps, runs.LAST_WEIGHTS,
                                          lambda resume: train_tcn(cfg, where["data"], where["tcn"], resume=resume, overwrite=not resume))
    encoder = runs.checkpoint(where["tcn"], runs.BEST_WEIGHTS)

    # the demo the policy imitates, which evaluate reads the reward against too: the first successful
    # human-proxy pour of the held-out episodes
    demo = choose_demo(Dataset.open(where["heldout"]).episodes, where["heldout"], cfg.env.behaviour).path
    with stage("evaluate the TCN and the baselines"):
        results = evaluate(replace(cfg, evaluate=replace(cfg.evaluate, demo=str(demo))), where["heldout"], where["evaluate"],
                           [f"TCN={encoder}"], ["random", "pixels"], overwrite=True)
    metrics["evaluate"] = {k: {m: v[m] for m in ("alignment_error", "classification_error_same_view", "reward_same_view") if m in v}
                           for k, v in results.items()}

    rl_cfg = replace(cfg, rl=replace(cfg.rl, encoder=str(encoder), demo=str(demo)))
    with stage("train a policy on the learned reward"):
        # a TCN trained further since the policy started (a larger train.steps) gives another reward: start the policy afresh
        stale = runs.changed_inputs(where["rl"], runs.pinned_inputs(pinned_files(rl_cfg)))
        metrics["train_rl"] = _resumable(where["rl"], cfg.rl.steps, runs.LAST_POLICY,
                                         lambda resume: train_rl(rl_cfg, where["rl"], resume=resume, overwrite=not resume), fresh=bool(stale))

    with stage("replay the policy"):
        metrics["replay"] = replay(where["rl"], p.replay_episodes, where["replay"], overwrite=True)

    metrics["wall_seconds"] = time.perf_counter() - started
    write_json(out / runs.METRICS, metrics)
    atomic_write_text(out / runs.REPORT, pipeline_report(metrics, out))
    print(f"pipeline: done in {metrics['wall_seconds']:.0f} s; wrote {out / runs.REPORT}")
    return metrics


class StageClock:
    """``with clock(name):`` prints the stage's name, then records its wall time and the CPU time of
    this process and of the worker processes it waited for (seconds) in ``into[name]`` (not of RL's
    environment processes, which are children of multiprocessing's fork server)."""

    def __init__(self, into: dict) -> None:
        self.into = into

    @contextlib.contextmanager
    def __call__(self, name: str):
        print(f"pipeline: {name}", flush=True)
        wall, cpu = time.perf_counter(), _cpu_seconds()
        try:
            yield
        finally:
            self.into[name] = {"wall_seconds": time.perf_counter() - wall, "cpu_seconds": _cpu_seconds() - cpu}


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _resumable(run: Path, steps: int, checkpoint: str, train, fresh: bool = False) -> dict:
    """A training stage: kept when finished with ``steps``, resumed when interrupted after its first
    checkpoint, started afresh otherwise (or when ``fresh``)."""
    done = run / runs.METRICS
    if not fresh and done.exists():
        try:
            metrics = read_json(done)
        except ValueError:
            metrics = None
        if isinstance(metrics, dict) and metrics.get("steps") == steps:
            return metrics
    return train(not fresh and runs.checkpoint(run, checkpoint).exists())


def pipeline_report(m: dict, out: Path) -> str:
    """``report.md``: the answer first (how much the policy poured, its pour beside the demo, the
    evaluation curve, what each stage took), then every stage's details with links."""
    rl, rep, tcn = m["train_rl"]["final_eval"], m["replay"], m["train_tcn"]
    rows = ["| encoder | alignment error % | classification error % | reward Spearman vs poured |", "| --- | ---: | ---: | ---: |"]
    for name, e in m["evaluate"].items():
        rs = e.get("reward_same_view", {}).get("spearman_return_vs_poured")
        rows.append(f"| {name} | {100 * e.get('alignment_error', float('nan')):.1f} | "
                    f"{100 * e.get('classification_error_same_view', float('nan')):.1f} | {'-' if rs is None else f'{rs:.2f}'} |")
    # RL's environment processes are children of multiprocessing's fork server, so their CPU time is not counted
    stages = ["| stage | wall time | CPU time of this process and the recording workers (2 cores: up to twice the wall time) |",
              "| --- | ---: | ---: |"]
    stages += [f"| {name} | {s['wall_seconds'] / 60:.1f} min | {s['cpu_seconds'] / 60:.1f} min |" for name, s in m["stages"].items()]
    at = runs.PIPELINE
    shown = {k: {kind: f"{at['replay']}/{name}" for kind, name in runs.replay_files(k).items()} for k in range(len(rep["episodes"]))}
    videos = " · ".join(f"[episode {k}]({f['video']}) ([reward]({f['reward']}))" for k, f in shown.items())
    curve = f"{at['rl']}/{runs.EVAL_CURVE}"
    return "\n".join([
        "# tcn-robot pipeline report", "",
        f"**The policy put {rl['fraction_in_bowl_mean']:.0%} of the particles into the bowl** (mean of {len(rl['fraction_in_bowl'])} "
        f"held-out evaluation episodes, {rl['success_rate']:.0%} of them successful), rewarded only by comparing the TCN "
        f"embedding of its camera's frames with one video of the human proxy pouring (reward `{m['train_rl']['reward']}`). "
        f"Wall time {m['wall_seconds'] / 60:.1f} min.", "",
        "The demo (top) and the policy's first replayed episode (bottom) at the same time steps:", "",
        f"![the demo and the policy]({shown[0]['strip']})", "",
        f"![fraction poured during training]({curve})", "", *stages, "",
        f"Config: [config.yaml](config.yaml); every figure: [metrics.json](metrics.json).", "",
        "## Data", "",
        f"- Demonstration video of the scripted human proxy: [{at['demo_video']}]({at['demo_video']}) "
        f"({m['demo']['fraction_in_bowl']:.0%} poured).",
        f"- Training set `{at['data']}/`: {m['record']['episodes']} episodes ({m['record']['demonstrators']}); held-out `{at['heldout']}/`: "
        f"{m['record_heldout']['episodes']} episodes, new seeds and camera placements.", "",
        "## TCN", "",
        f"{tcn['steps']} steps of multi-view TCN ({tcn['loss']}), loss {tcn['train_loss_first']:.3f} -> {tcn['train_loss_final']:.3f}, "
        f"{tcn['frames_per_second']:.0f} frames/s on {tcn['device']}. Run: [{at['tcn']}/]({at['tcn']}/) "
        f"(TensorBoard in {at['tcn']}/{runs.TENSORBOARD}).", "",
        f"## Evaluation on held-out episodes ([report]({at['evaluate']}/{runs.REPORT}))", "", *rows, "",
        "## Policy from one human-proxy video", "",
        f"PPO on the `{m['train_rl']['reward']}` reward against `{Path(m['train_rl']['demo']).name}` for {m['train_rl']['steps']} steps: "
        f"fraction poured {rl['fraction_in_bowl_mean']:.2f} (std {rl['fraction_in_bowl_std']:.2f}) over {len(rl['fraction_in_bowl'])} "
        f"evaluation episodes, success rate {rl['success_rate']:.2f}. Curve: [{curve}]({curve}).", "",
        f"Replay: {videos}; fraction poured {rep['fraction_in_bowl_mean']:.2f}.", "",
    ])


def record_demo_video(cfg: Config, path: Path) -> dict:
    """One scripted human-proxy pour, every view side by side per frame, written to ``path``."""
    env = PourEnv(cfg.env, embodiment="human", image_size=cfg.pipeline.video_size)
    seen = {a: set() for a in ATTRIBUTES}
    start = time.perf_counter()
    try:
        steps = run_demonstrator("human", env, cfg.pipeline.seed, partial_prob=0.0, miss_prob=0.0)
        fps = env.metadata["render_fps"]
        size = cfg.pipeline.video_size
        with VideoWriter(path, fps, (size * len(cfg.env.cameras), size)) as video:
            video.write(np.concatenate(env.render_views(), axis=1))  # the frame after reset
            for step in tqdm(steps, total=cfg.env.episode_steps, desc="human-proxy pour", unit="step", mininterval=1.0):
                video.write(np.concatenate(env.render_views(), axis=1))
                for a in ATTRIBUTES:
                    seen[a].add(step.info[a])
        info = step.info
    finally:
        env.close()
    return {
        "video": str(path.name),
        "codec": video.codec,
        "frames": video.frames,
        "views": len(cfg.env.cameras),
        "fraction_in_bowl": info["fraction_in_bowl"],
        "fraction_spilled": info["fraction_spilled"],
        "fraction_in_cup": info["fraction_in_cup"],
        "is_success": info["is_success"],
        "attribute_values_seen": {a: sorted(v) for a, v in seen.items()},
        "wall_seconds": time.perf_counter() - start,
    }
