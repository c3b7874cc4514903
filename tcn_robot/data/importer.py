"""``tcn-robot import-videos``: turn externally recorded synchronized videos into episodes.

Source files are named ``{sequence}_view{k}.{mp4,mov,avi,mkv}`` (the official TCN release names
them ``N_view{k}.mov``); the views of a sequence must be numbered 0..V-1 and agree: the same frame
rate (within ``FPS_TOLERANCE``) and the same frame count, or with ``trim=True`` counts that differ by
at most ``TRIM_TOLERANCE`` (a few frames of start-up skew are common with separate cameras), every
view then cut to the shortest. ``image_size`` centre-crops to a square and resizes. Imported
episodes have no ``states.npz``.

A sequence name is data: it becomes an episode name only through ``safe_name`` (a name with nothing
left, such as ``..``, is refused); names that clean to the same episode name get ``-2``, ``-3``, ...
in sorted order, and the summary lists every renamed or refused sequence. An episode remembers the
sequence it came from, so importing the folder again adds only what is new.
"""
from __future__ import annotations

import math
import os
import re
import warnings
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .. import EMBODIMENTS, UserError, __version__, runs
from ..io import read_json
from .episodes import MANIFEST, META, EpisodeWriter, complete_episodes, read_manifest, safe_name, write_manifest

PATTERN = re.compile(r"^(?P<seq>.+)_view(?P<view>\d+)\.(mp4|mov|avi|mkv)$", re.IGNORECASE | re.DOTALL)
FPS_TOLERANCE = 0.01  # relative difference of the views' frame rates
TRIM_TOLERANCE = (3, 0.05)  # --trim: the views' frame counts may differ by 3 frames or 5% of the longest, whichever is more


def _read(path: Path, size: int | None) -> tuple[np.ndarray, float]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot be opened as a video")
    fps = cap.get(cv2.CAP_PROP_FPS)
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
    if not (math.isfinite(fps) and 0 < fps <= 1000):
        raise ValueError(f"{path}: frame rate {fps:g} in its header is impossible")
    return np.stack(frames), float(fps)


def find_sequences(src: Path) -> tuple[dict[str, dict[int, Path]], list[str]]:
    """The videos of ``src`` by sequence and view, and the files refused for their names (not UTF-8)."""
    seqs: dict[str, dict[int, Path]] = defaultdict(dict)
    refused = []
    for f in sorted(src.iterdir()):
        try:
            f.name.encode("utf-8")
        except UnicodeEncodeError:
            refused.append(f"{os.fsencode(f.name).decode('utf-8', 'backslashreplace')}: the file name is not valid UTF-8")
            continue
        m = PATTERN.match(f.name)
        if m and f.is_file():
            seqs[m["seq"]][int(m["view"])] = f
    return dict(seqs), refused


def episode_names(sequences: list[str], taken: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """An episode name for every sequence not imported yet, and the sequences refused for their name.

    ``taken``: episode name -> the sequence it holds (the dataset so far). A sequence that cleans to its
    own name keeps it; the others take ``name-2``, ``name-3``, ... in sorted order."""
    used = set(taken)
    names, refused = {}, []
    new = sorted(s for s in sequences if s not in taken.values())
    for seq in sorted(new, key=lambda s: safe_name(s) != s):  # names that are already clean first
        base = safe_name(seq)
        if not base:
            refused.append(f"sequence {seq!r}: its name leaves no usable episode name (rename the files)")
            continue
        name, k = base, 1
        while name in used:
            k += 1
            name = f"{base}-{k}"
        used.add(name)
        names[seq] = name
    return names, refused


def _imported(out: Path) -> dict[str, str]:
    """Episode name -> the sequence it was imported from, for the dataset ``out`` so far."""
    taken = {}
    for p in complete_episodes(out) if out.is_dir() else []:
        try:
            meta = read_json(p / META)
            taken[p.name] = str(meta.get("sequence", p.name)) if isinstance(meta, dict) else p.name
        except (OSError, ValueError):
            taken[p.name] = p.name
    return taken


def _check_views(seq: str, views: dict[int, Path], read: list[tuple[np.ndarray, float]], trim: bool) -> None:
    """Raise ValueError naming the sequence when its views disagree (frame rate, frame count, size)."""
    rates = [r[1] for r in read]
    if max(rates) - min(rates) > FPS_TOLERANCE * max(rates):
        listed = ", ".join(f"{views[v].name}: {r:g} fps" for v, r in enumerate(rates))
        raise ValueError(f"sequence {seq!r}: its views have different frame rates ({listed})")
    counts = [len(r[0]) for r in read]
    listed = ", ".join(f"{views[v].name}: {c}" for v, c in enumerate(counts))
    if len(set(counts)) > 1 and not trim:
        raise ValueError(f"sequence {seq!r}: its views have unequal lengths ({listed} frames); pass --trim to cut to the shortest")
    allowed = max(TRIM_TOLERANCE[0], int(TRIM_TOLERANCE[1] * max(counts)))
    if max(counts) - min(counts) > allowed:
        raise ValueError(f"sequence {seq!r}: its views' lengths differ by more than --trim allows ({allowed} frames): {listed}")
    shapes = {r[0].shape[1:3] for r in read}
    if len(shapes) > 1:
        raise ValueError(f"sequence {seq!r}: its views have different sizes {sorted(shapes)}; pass --image-size")


@runs.owns_outputs
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
    seqs, problems = find_sequences(src)
    if not seqs:
        raise UserError(f"{src}: no videos named like {{sequence}}_view{{k}}.mp4 (or .mov, .avi, .mkv)")
    mode = runs.check_output(out, "import-videos", overwrite=overwrite)
    if mode == "resume" and (out / MANIFEST).is_file():
        before = read_manifest(out).get("settings", {})
        if before.get("image_size") != image_size:
            raise UserError(f"{out / MANIFEST}: imported with --image-size {before.get('image_size')}; adding sequences at "
                            f"{image_size} would mix image sizes (use the same --image-size, or --overwrite)")
    runs.claim_output(out, "import-videos", mode, inputs={"src": str(src.resolve())})
    taken = _imported(out)
    names, refused = episode_names(list(seqs), taken)
    problems += refused
    if strict and problems:
        raise UserError(f"{src}: {problems[0]}")
    renamed = {seq: name for seq, name in names.items() if seq != name}
    imported = 0
    for seq, name in tqdm(names.items(), desc="import", unit="sequence"):
        views = seqs[seq]
        try:
            if sorted(views) != list(range(len(views))):
                missing = sorted(set(range(max(views) + 1)) - set(views))
                raise ValueError(f"sequence {seq!r} has no view{missing[0]} video (views must be numbered 0..V-1)")
            read = [_read(views[v], image_size) for v in range(len(views))]
            _check_views(seq, views, read, trim)
        except ValueError as e:
            if strict:
                raise UserError(f"{src}: {e}") from None
            problems.append(str(e))
            continue
        counts = [len(r[0]) for r in read]
        n = min(counts)
        h, w = read[0][0].shape[1:3]
        writer = EpisodeWriter(out, name, len(views), read[0][1], (h, w))
        try:
            for t in range(n):
                writer.add([r[0][t] for r in read])
            writer.commit({"name": name, "sequence": seq, "fps": read[0][1], "image_size": [h, w], "embodiment": embodiment,
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
    return {"imported": imported, "already_present": len(seqs) - len(names) - len(refused), "skipped_bad": len(problems),
            "problems": problems, "renamed": renamed}
