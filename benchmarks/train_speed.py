"""TCN training throughput (frames per second through forward, loss and backward).

    python benchmarks/train_speed.py [--device cpu|cuda] [--steps 10]

Multi-view triplet batches of 4 sequences x 16 pairs (128 frames) from an in-memory stand-in
for the frame cache, through the real training engine (augmentation included).
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from tcn_robot.config import load_config
from tcn_robot.data.datasets import MultiViewTCNBatches
from tcn_robot.models import EmbeddingNet
from tcn_robot.train.engine import Engine
from tcn_robot.train.tcn import TCNMethod


class RandomCache:
    def __init__(self, size: int, episodes: int = 6, frames: int = 101, views: int = 3) -> None:
        rng = np.random.default_rng(0)
        self.arrays = [rng.integers(0, 255, (frames, views, size, size, 3), dtype=np.uint8) for _ in range(episodes)]
        self.episodes = [type("E", (), {"num_views": views})() for _ in range(episodes)]

    def __len__(self) -> int:
        return len(self.arrays)


def measure(encoder: str, size: int, device: str, steps: int) -> float:
    cfg = load_config(None, [f"model.encoder={encoder}", f"model.image_size={size}", f"train.device={device}",
                             "train.log_every=1000", "train.checkpoint_every=100000", "train.val_every=100000"])
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        engine = Engine(tmp, cfg.train, EmbeddingNet(cfg.model), TCNMethod(cfg.tcn),
                        MultiViewTCNBatches(RandomCache(size), 4, 16), cfg.augment)
        engine.fit(steps=2)  # warm-up
        start = time.perf_counter()
        engine.fit(steps=2 + steps)
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        return steps * 128 / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# {name}")
    print("| encoder | image size | training frames/s |")
    print("| --- | ---: | ---: |")
    for encoder, size in (("small", 64), ("small", 128), ("resnet18", 64), ("resnet18", 128)):
        print(f"| {encoder} | {size} | {measure(encoder, size, args.device, args.steps):.0f} |", flush=True)


if __name__ == "__main__":
    main()
