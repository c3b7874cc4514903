"""Training throughput of every method, side by side in one run (the real engine, augmentation and
pretext transforms included, batches from an in-memory stand-in for the frame cache).

    python benchmarks/train_speed.py [--device cpu|cuda] [--steps 10] [--config configs/table1.yaml] 2>/dev/null

For each method: training steps per second, network inputs per second (frames, views, tiles or
patches: what the network computes on) and their ratio to TCN's; then, for TCN, the small CNN and
ResNet-18 at 64 and 128 px, and with and without bf16 autocast (``train.amp``; on a CPU it applies only
where the CPU has native bf16, ``device.bf16_autocast``).
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from tcn_robot.config import load_config
from tcn_robot.device import bf16_autocast, pick_device
from tcn_robot.methods import METHODS, method_class
from tcn_robot.models import EmbeddingNet
from tcn_robot.train.engine import Engine


class RandomCache:
    """Random frames in the frame cache's layout: ``arrays[i]`` (T, V, S, S, 3) uint8."""

    def __init__(self, size: int, episodes: int = 6, frames: int = 101, views: int = 3) -> None:
        rng = np.random.default_rng(0)
        self.arrays = [rng.integers(0, 255, (frames, views, size, size, 3), dtype=np.uint8) for _ in range(episodes)]
        self.episodes = [type("E", (), {"num_views": views, "name": f"ep{i:05d}"})() for i in range(episodes)]
        self.dataset_root = "random frames"

    def __len__(self) -> int:
        return len(self.arrays)


def measure(cfg, steps: int) -> tuple[float, float]:
    """(steps/s, network inputs/s) of ``cfg.train.method`` after two warm-up steps."""
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        method = method_class(cfg.train.method)(cfg)
        source = method.source(RandomCache(cfg.model.image_size), 0, 0, 1)
        engine = Engine(tmp, cfg.train, EmbeddingNet(cfg.model), method, source)
        engine.fit(steps=2)  # warm-up
        frames, start = engine.frames_seen, time.perf_counter()
        engine.fit(steps=2 + steps, resumed=True)
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
        return steps / wall, (engine.frames_seen - frames) / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--config", default=None, help="YAML config (default: the packaged quickstart)")
    args = ap.parse_args()
    common = [f"train.device={args.device}", "train.log_every=1000", "train.checkpoint_every=100000", "train.val_every=100000",
              "train.checkpoint_minutes=0"]
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# {name}")
    print("| method | steps/s | network inputs/s | ratio to TCN |")
    print("| --- | ---: | ---: | ---: |")
    measure(load_config(args.config, common), 2)  # warm-up: thread pools, allocator, kernels
    base = None
    for method in METHODS:
        sps, fps = measure(load_config(args.config, [*common, f"train.method={method}"]), args.steps)
        base = base or fps
        print(f"| {method} | {sps:.2f} | {fps:.0f} | {fps / base:.2f} |", flush=True)
    print()
    print("| TCN encoder | image size | network inputs/s |")
    print("| --- | ---: | ---: |")
    for encoder, size in (("small", 64), ("small", 128), ("resnet18", 64), ("resnet18", 128)):
        cfg = load_config(args.config, [*common, f"model.encoder={encoder}", f"model.image_size={size}"])
        print(f"| {encoder} | {size} | {measure(cfg, args.steps)[1]:.0f} |", flush=True)
    print()
    native = bf16_autocast(pick_device(args.device))
    print(f"| TCN, small CNN, 64 px | steps/s | ratio to float32 |  (bf16 native on this device: {'yes' if native else 'no'})")
    print("| --- | ---: | ---: |")
    fp32 = measure(load_config(args.config, [*common, "train.amp=false"]), args.steps)[0]
    bf16 = measure(load_config(args.config, [*common, "train.amp=true"]), args.steps)[0]
    print(f"| float32 | {fp32:.2f} | 1.00 |")
    print(f"| bf16 autocast{'' if native else ' (off: not native here)'} | {bf16:.2f} | {bf16 / fp32:.2f} |", flush=True)


if __name__ == "__main__":
    main()
