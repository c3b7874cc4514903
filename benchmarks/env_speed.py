"""Control steps per second of the pouring world, physics only and with cameras, side by side.

Each configuration replays the same scripted robot pours (particles in motion: the expensive
case) and times ``env.step`` plus the rendering asked for. One process, one core.

    python benchmarks/env_speed.py --episodes 3
"""
from __future__ import annotations

import argparse
import platform
import time


from tcn_robot.envs import PourEnv, run_demonstrator

CASES = [
    ("physics only", 0, 64),
    ("1 camera, 64 px", 1, 64),
    ("3 cameras, 64 px", 3, 64),
    ("3 cameras, 128 px", 3, 128),
]


def measure(cameras: int, size: int, episodes: int) -> float:
    env = PourEnv(image_size=size)
    actions = []
    for seed in range(episodes):  # the scripted pour's actions, replayed below under the timer
        actions.append([s.action for s in run_demonstrator("robot", env, seed)])
    steps, elapsed = 0, 0.0
    views = list(range(cameras))
    for seed, acts in enumerate(actions):
        env.reset(seed=seed)
        start = time.perf_counter()
        for a in acts:
            env.step(a)
            if views:
                env.world.render(views)
        elapsed += time.perf_counter() - start
        steps += len(acts)
    env.close()
    return steps / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=3)
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, pybullet TinyRenderer, 40 particles, 20 Hz control")
    print("| case | control steps/s | ratio to physics only |")
    print("| --- | ---: | ---: |")
    base = None
    for name, cams, size in CASES:
        rate = measure(cams, size, args.episodes)
        base = base or rate
        print(f"| {name} | {rate:.0f} | {rate / base:.2f} |", flush=True)


if __name__ == "__main__":
    main()
