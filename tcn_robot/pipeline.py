"""Run every stage end to end: record -> train-tcn (evaluation and RL join as they land).

Layout of ``OUT``: ``config.yaml`` (resolved), ``demo/multiview.mp4`` (a scripted human-proxy
pour, every camera side by side), ``data/`` (the recorded dataset), ``tcn/`` (the TCN run), and
``metrics.json`` with each stage's figures. Re-running the same command resumes: the recording
keeps complete episodes, training continues from its last checkpoint, finished stages are kept.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .config import Config, save_config
from .data.record import record_dataset
from .envs import ATTRIBUTES, PourEnv, run_demonstrator
from .io import write_json
from .train.tcn import train_tcn
from .video import VideoWriter


def run_pipeline(cfg: Config, out: str | Path) -> dict:
    """Run the chain into ``out``; returns the metrics written to ``out/metrics.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    started = time.perf_counter()
    metrics: dict = {}
    stage = lambda name: print(f"pipeline: {name}", flush=True)  # noqa: E731

    stage("human-proxy demonstration video")
    metrics["demo"] = record_demo_video(cfg, out / "demo" / "multiview.mp4")

    stage("record the dataset")
    r = cfg.record
    metrics["record"] = record_dataset(cfg.env, out / "data", r.episodes, r.views, r.image_size, r.seed, r.demonstrators, workers=r.workers)

    stage("train the TCN")
    metrics["train_tcn"] = _train_tcn_stage(cfg, out / "data", out / "tcn")

    metrics["wall_seconds"] = time.perf_counter() - started
    write_json(out / "metrics.json", metrics)
    print(f"pipeline: done in {metrics['wall_seconds']:.0f} s; wrote {out / 'metrics.json'}")
    return metrics


def _train_tcn_stage(cfg: Config, data: Path, run: Path) -> dict:
    done = run / "metrics.json"
    if done.exists():
        m = json.loads(done.read_text())
        if m.get("steps") == cfg.train.steps:
            return m
    return train_tcn(cfg, data, run, resume=(run / "checkpoints" / "last.pt").exists())


def record_demo_video(cfg: Config, path: Path) -> dict:
    """One scripted human-proxy pour, every view side by side per frame, written to ``path``."""
    env = PourEnv(cfg.env, embodiment="human", image_size=cfg.pipeline.video_size)
    seen = {a: set() for a in ATTRIBUTES}
    start = time.perf_counter()
    try:
        steps = run_demonstrator("human", env, cfg.pipeline.seed)
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
