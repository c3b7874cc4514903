"""Recording throughput, and training batches from the frame cache vs decoding MP4 directly.

    python benchmarks/data_speed.py --episodes 4

Recording: frames written per second (every view counts), 2 and 3 views at 64 px, one process.
Batches: multi-view TCN batches (4 sequences x 16 time steps, anchor + positive) sampled from the
memory-mapped cache, against the same batches read by decoding the MP4s (each needed view read
up to its last needed frame, as a data loader without a cache must).
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from tcn_robot.data.cache import FrameCache
from tcn_robot.data.datasets import MultiViewTCNBatches
from tcn_robot.data.episodes import Dataset
from tcn_robot.data.record import record_dataset
from tcn_robot.envs import make_pour_config

MIX = "human=0.5,robot=0.25,random=0.25"


def recording(root: Path, views: int, episodes: int) -> float:
    start = time.perf_counter()
    s = record_dataset(make_pour_config(), root, episodes, views, 64, 0, MIX)
    return s["frames_recorded_now"] / (time.perf_counter() - start)


def decode_batch(ds: Dataset, rng: np.random.Generator, sequences: int, per_sequence: int) -> int:
    frames = 0
    for e in rng.choice(len(ds.episodes), sequences, replace=False):
        ep = ds.episodes[e]
        t = np.sort(rng.choice(ep.num_frames, per_sequence, replace=False))
        va = rng.integers(ep.num_views, size=per_sequence)
        vp = (va + rng.integers(1, ep.num_views, size=per_sequence)) % ep.num_views
        for view in set(va) | set(vp):
            need = set(t[va == view]) | set(t[vp == view])
            cap = cv2.VideoCapture(str(ep.video(view)))
            for k in range(max(need) + 1):
                ok, f = cap.read()
                if k in need:
                    cv2.cvtColor(f, cv2.COLOR_BGR2RGB)
                    frames += 1
            cap.release()
    return frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        print("| recording (64 px, one process) | frames/s |")
        print("| --- | ---: |")
        for views in (2, 3):
            print(f"| {views} views | {recording(Path(tmp) / f'v{views}', views, args.episodes):.0f} |", flush=True)
        ds = Dataset.open(Path(tmp) / "v3")
        start = time.perf_counter()
        cache = FrameCache(ds, progress=False)
        build = time.perf_counter() - start
        source = MultiViewTCNBatches(cache, 4, 16, seed=0)
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for _ in range(args.batches):
            source.sample(rng)
        cached = args.batches * 128 / (time.perf_counter() - start)
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        n = sum(decode_batch(ds, rng, 4, 16) for _ in range(args.batches))
        decoded = n / (time.perf_counter() - start)
        print()
        print("| training batches (3 views, 64 px, 4 x 16 pairs) | frames/s | ratio |")
        print("| --- | ---: | ---: |")
        print(f"| decoding MP4 directly | {decoded:.0f} | 1.0 |")
        print(f"| frame cache (memory-mapped) | {cached:.0f} | {cached / decoded:.0f} |")
        print(f"\n(building the cache once: {build:.2f} s for {len(cache)} episodes)")


if __name__ == "__main__":
    main()
