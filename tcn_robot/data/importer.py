"""``tcn-robot import-videos``: turn externally recorded synchronized videos into episodes.

Source files are named ``{sequence}_view{k}.{mp4,mov,avi,mkv}`` (the official TCN release names
them ``N_view{k}.mov``); the views of a sequence must be numbered 0..V-1. Frame counts must match
across views, or with ``trim=True`` every view is cut to the shortest (a few frames of start-up
skew are common with separate cameras). ``image_size`` centre-crops to a square and resizes.
Imported episodes have no ``states.npz``.
"""
from __future__ import annotations

import re
import warnings
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .. import EMBODIMENTS, UserError, __version__, runs
from .episodes import MANIFEST, META, EpisodeWriter, read_manifest, write_manifest

PATTERN = re.compile(r"^(?P<seq>.+)_view(?P<view>\d+)\.(mp4|mov|avi|mkv)$", re.IGNORECASE)


def _read(path: Path, size: int | None) -> tuple[np.ndarray, float]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot be opened as a video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        f = cv2.cvtColor(f, cv2.COLOR_BGR2RGB)
        if size is not None:
            h, w = f.shape[:2]
            s = min(h, w)
            y, x = (h - s) // 2, (w - s) // 2
            f = cv2.resize(f[y : y + s, x : x + s], (size, size), interpolation=cv2.INTER_AREA)
        frames.append(f)
    cap.release()
    if len(frames) < 2:
        raise ValueError(f"{path}: {len(frames)} decodable frames (empty or corrupt video)")
    return np.stack(frames), float(fps)


def find_sequences(src: Path) -> dict[str, dict[int, Path]]:
    seqs: dict[str, dict[int, Path]] = defaultdict(dict)
    for f in sorted(src.iterdir()):
        m = PATTERN.match(f.name)
        if m and f.is_file():
            seqs[m["seq"]][int(m["view"])] = f
    return dict(seqs)


def import_videos(src: str | Path, out: str | Path, image_size: int | None = None, trim: bool = False, strict: bool = False,
                  overwrite: bool = False, embodiment: str = "unknown") -> dict:
    """Import every sequence in ``src`` into the dataset ``out`` (new, or an earlier import, which
    gains the sequences it lacks; ``overwrite`` starts it afresh); returns a summary. ``embodiment``
    (human, robot or unknown) says who does the task in these videos: human and robot demonstrations
    are what ``tcn.align_weight`` aligns (import each folder with its own)."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise UserError(f"{src}: no such folder")
    if embodiment not in EMBODIMENTS:
        raise UserError(f"--embodiment must be one of {', '.join(EMBODIMENTS)}, got {embodiment!r}")
    if image_size is not None and not 16 <= image_size <= 1024:
        raise UserError(f"--image-size must be between 16 and 1024, got {image_size}")
    seqs = find_sequences(src)
    if not seqs:
        raise UserError(f"{src}: no videos named like {{sequence}}_view{{k}}.mp4 (or .mov, .avi, .mkv)")
    mode = runs.check_output(out, "import-videos", overwrite=overwrite)
    if mode == "resume" and (out / MANIFEST).is_file():
        before = read_manifest(out).get("settings", {})
        if before.get("image_size") != image_size:
            raise UserError(f"{out / MANIFEST}: imported with --image-size {before.get('image_size')}; adding sequences at "
                            f"{image_size} would mix image sizes (use the same --image-size, or --overwrite)")
    runs.claim_output(out, "import-videos", mode, inputs={"src": str(src.resolve())})
    imported, skipped, problems = 0, 0, []
    for seq, views in tqdm(seqs.items(), desc="import", unit="sequence"):
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", seq)
        if (out / name / META).exists():
            skipped += 1
            continue
        try:
            if sorted(views) != list(range(len(views))):
                missing = sorted(set(range(max(views) + 1)) - set(views))
                raise ValueError(f"{src}: sequence {seq!r} has no view{missing[0]} video (views must be numbered 0..V-1)")
            read = [_read(views[v], image_size) for v in range(len(views))]
            counts = [len(r[0]) for r in read]
            if len(set(counts)) > 1 and not trim:
                listed = ", ".join(f"{views[v].name}: {c}" for v, c in enumerate(counts))
                raise ValueError(f"{src}: sequence {seq!r} has views of unequal length ({listed}); pass --trim to cut to the shortest")
            shapes = {r[0].shape[1:3] for r in read}
            if len(shapes) > 1:
                raise ValueError(f"{src}: sequence {seq!r} has views of different sizes {sorted(shapes)}; pass --image-size")
        except ValueError as e:
            if strict:
                raise UserError(str(e)) from None
            problems.append(str(e))
            continue
        n = min(counts)
        h, w = read[0][0].shape[1:3]
        writer = EpisodeWriter(out, name, len(views), read[0][1], (h, w))
        try:
            for t in range(n):
                writer.add([r[0][t] for r in read])
            writer.commit({"name": name, "fps": read[0][1], "image_size": [h, w], "embodiment": embodiment,
                           "demonstrator": "imported" if embodiment == "unknown" else embodiment, "sources": [views[v].name for v in range(len(views))],
                           "trimmed_from": counts if len(set(counts)) > 1 else None,
                           "versions": {"tcn_robot": __version__}}, None)
        except BaseException:
            writer.abort()
            raise
        imported += 1
    for p in problems:
        warnings.warn(f"skipped: {p}", stacklevel=2)
    write_manifest(out, {"imported_from": str(src.resolve()), "image_size": image_size, "trim": trim})
    return {"imported": imported, "already_present": skipped, "skipped_bad": len(problems), "problems": problems}
