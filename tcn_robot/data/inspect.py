"""``tcn-robot inspect``: what a dataset holds and which episodes are bad, and why."""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from .. import UserError
from .episodes import Dataset, EpisodeError, complete_episodes, load_episode


def inspect_dataset(root: str | Path, decode: bool = False) -> dict:
    """Summary of a dataset; ``decode=True`` also decodes every frame of every view. ``bad`` lists
    broken episodes, ``problems`` what keeps the dataset as a whole from training (mixed image sizes,
    single-view episodes for multi-view TCN)."""
    root = Path(root)
    problems = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = Dataset.open(root)
        bad, found = list(ds.bad), ds.episodes
    except UserError as e:  # a damaged manifest, or no valid episode: say so, and look at the folders themselves
        if not root.is_dir():
            raise
        problems.append(str(e))
        bad, found = [], []
        for p in complete_episodes(root):
            try:
                found.append(load_episode(p))
            except EpisodeError as why:
                bad.append((p, str(why)))
    good = []
    for ep in found:
        if decode:
            try:
                for v in range(ep.num_views):
                    ep.read_view(v)
            except Exception as e:
                bad.append((ep.path, str(e)))
                continue
        good.append(ep)
    demos = Counter(ep.meta.get("demonstrator", "?") for ep in good)
    success = {
        d: float(np.mean([bool(ep.meta.get("is_success")) for ep in good if ep.meta.get("demonstrator") == d]))
        for d in demos if any("is_success" in ep.meta for ep in good if ep.meta.get("demonstrator") == d)
    }
    frames = [ep.num_frames for ep in good]
    sizes = Counter(tuple(ep.image_size) for ep in good)
    if len(sizes) > 1:  # each episode is fine alone; training batches frames of several episodes
        listed = ", ".join(f"{w}x{h}: {n} episodes" for (h, w), n in sorted(sizes.items()))
        problems.append(f"episodes have different image sizes ({listed}); training needs one (import with --image-size)")
    one_view = [ep.name for ep in good if ep.num_views < 2]
    if one_view:
        problems.append(f"{len(one_view)} episodes have a single view (e.g. {one_view[0]}); multi-view TCN needs two or more")
    return {
        "dataset": str(Path(root)),
        "episodes": len(good),
        "bad_episodes": len(bad),
        "views": sorted({ep.num_views for ep in good}),
        "frames_total": int(sum(frames)),
        "frames_per_episode": [min(frames), max(frames)] if frames else [],
        "image_sizes": sorted({tuple(ep.image_size) for ep in good}),
        "with_states": sum(bool(ep.meta["has_states"]) for ep in good),
        "demonstrators": dict(demos),
        "success_rate": success,
        "bad": [{"episode": str(p), "problem": why} for p, why in bad],
        "problems": problems,
    }


def format_summary(s: dict) -> str:
    lines = [
        f"dataset          {s['dataset']}",
        f"episodes         {s['episodes']} valid, {s['bad_episodes']} bad",
        f"views            {', '.join(map(str, s['views']))}",
        f"frames           {s['frames_total']} in all" + (f", {s['frames_per_episode'][0]}-{s['frames_per_episode'][1]} per episode"
                                                            if s["frames_per_episode"] else ""),
        f"image size       {', '.join(f'{w}x{h}' for h, w in s['image_sizes'])}",
        f"with states      {s['with_states']}",
        "demonstrators    " + ", ".join(f"{k}: {v}" for k, v in sorted(s["demonstrators"].items())),
    ]
    if s["success_rate"]:
        lines.append("success rate     " + ", ".join(f"{k}: {v:.0%}" for k, v in sorted(s["success_rate"].items())))
    for b in s["bad"]:
        lines.append(f"bad              {b['problem']}")
    for p in s["problems"]:
        lines.append(f"problem          {p}")
    return "\n".join(lines)
