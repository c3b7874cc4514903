"""The on-disk episode format: write atomically, read, validate.

An episode is a folder::

    view0.mp4 ... view{V-1}.mp4   one video per camera, all with the same number of frames
    states.npz                    per-frame simulator ground truth (absent for imported footage)
    meta.json                     seed, fps, frame count, image size, cameras, embodiment, ...

A dataset is a folder of episodes plus ``manifest.json`` listing the complete ones. An episode is
written into a hidden temporary folder and renamed when complete, so a killed recording never
leaves an episode that looks whole. An episode's name is one safe path component (``safe_name``):
names that come from data never reach outside the dataset.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import EMBODIMENTS, UserError
from ..io import AtomicFile, check_path_encoding, read_json, temp_path, write_json
from ..runs import MANIFEST
from ..video import VideoWriter

FORMAT_VERSION = 1
META = "meta.json"
STATES = "states.npz"
REQUIRED_META = ("format", "num_views", "num_frames", "fps", "image_size", "has_states")
# one path component, no leading dot (hidden files, ``.``, ``..``) or dash (read as a flag), nothing a
# shell or file system treats specially
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
RESERVED = {MANIFEST}


class EpisodeError(Exception):
    """One problem with one episode; ``str()`` names the file and the problem."""


def is_safe_name(name: object) -> bool:
    return isinstance(name, str) and SAFE_NAME.fullmatch(name) is not None and name not in RESERVED


def safe_name(text: str) -> str:
    """``text`` as an episode name: characters outside ``[A-Za-z0-9_.-]`` become ``_``, leading dots and
    dashes are dropped, and it is cut to 128 characters; "" when nothing is left (or it is reserved)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip(".-")[:128]
    return name if is_safe_name(name) else ""


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _integer(x: object, low: int, high: int) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and low <= x <= high


def check_meta(meta: object) -> None:
    """Raise ValueError naming the first key of an episode's meta.json with a wrong type or an
    impossible value."""
    if not isinstance(meta, dict):
        raise ValueError("expected a JSON object")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"missing keys {missing}")
    if meta["format"] != FORMAT_VERSION:
        raise ValueError(f"format {meta['format']!r}, this tcn-robot reads format {FORMAT_VERSION}")
    checks = {
        "num_views": _integer(meta["num_views"], 1, 64),
        "num_frames": _integer(meta["num_frames"], 2, 10**7),
        "fps": _number(meta["fps"]) and 0 < meta["fps"] <= 1000,
        "image_size": isinstance(meta["image_size"], list) and len(meta["image_size"]) == 2
                      and all(_integer(s, 1, 8192) for s in meta["image_size"]),
        "has_states": isinstance(meta["has_states"], bool),
        "embodiment": meta.get("embodiment", "unknown") in EMBODIMENTS,
        "view_embodiments": "view_embodiments" not in meta or (
            isinstance(meta["view_embodiments"], list) and len(meta["view_embodiments"]) == meta["num_views"]
            and all(e in EMBODIMENTS for e in meta["view_embodiments"])),
        "demonstrator": isinstance(meta.get("demonstrator", ""), str),
        "is_success": isinstance(meta.get("is_success", False), bool),
        "fraction_in_bowl": "fraction_in_bowl" not in meta or _number(meta["fraction_in_bowl"]),
        "fraction_in_jar": "fraction_in_jar" not in meta or _number(meta["fraction_in_jar"]),
        "behaviour": isinstance(meta.get("behaviour", ""), str) and len(meta.get("behaviour", "")) <= 64,
        "behaviour_performed": isinstance(meta.get("behaviour_performed", ""), str) and len(meta.get("behaviour_performed", "")) <= 64,
    }
    bad = next((k for k, ok in checks.items() if not ok), None)
    if bad is not None:
        raise ValueError(f"impossible {bad} {str(meta.get(bad))[:60]!r}")


def view_name(view: int) -> str:
    return f"view{view}.mp4"


class EpisodeWriter:
    """Streams the frames of every view into a temporary folder; ``commit`` writes the states
    and meta and renames the folder to ``root/name`` in one step.

    Args:
        root: the dataset folder.
        name: the episode's folder name.
        num_views, fps, image_size: the videos' layout (image_size is (H, W)).
    """

    def __init__(self, root: Path, name: str, num_views: int, fps: float, image_size: tuple[int, int]) -> None:
        if not is_safe_name(name):
            raise ValueError(f"{name!r} is not a safe episode name")
        self.root = Path(root)
        self.final = self.root / name
        if self.final.exists():
            raise EpisodeError(f"{self.final}: exists already and is not a complete episode; move it out of the dataset")
        self.tmp = temp_path(self.final)
        self.tmp.mkdir(parents=True)
        h, w = image_size
        self.videos = []
        try:
            for v in range(num_views):
                self.videos.append(VideoWriter(self.tmp / view_name(v), fps, (w, h)))
        except BaseException:
            self.abort()
            raise
        self.frames = 0

    def add(self, views: list[np.ndarray]) -> None:
        """One frame of every view, RGB uint8 (H, W, 3) each."""
        if len(views) != len(self.videos):
            raise ValueError(f"got {len(views)} views, the episode has {len(self.videos)}")
        for writer, frame in zip(self.videos, views):
            writer.write(frame)
        self.frames += 1

    def commit(self, meta: dict, states: dict[str, np.ndarray] | None) -> Path:
        for writer in self.videos:
            writer.close()
        if states is not None:
            for k, v in states.items():
                if len(v) not in (self.frames, self.frames - 1):
                    raise ValueError(f"state {k!r} has {len(v)} rows for {self.frames} frames")
            with AtomicFile(self.tmp / STATES) as tmp:
                np.savez_compressed(tmp, **states)
        write_json(self.tmp / META, {**meta, "format": FORMAT_VERSION, "num_views": len(self.videos),
                                     "num_frames": self.frames, "has_states": states is not None,
                                     "codec": self.videos[0].codec})
        os.rename(self.tmp, self.final)  # fails, deleting nothing, when something took the name meanwhile
        return self.final

    def abort(self) -> None:
        for writer in self.videos:
            writer.abort()
        shutil.rmtree(self.tmp, ignore_errors=True)


@dataclass
class Episode:
    """A validated episode folder."""

    path: Path
    meta: dict

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def num_views(self) -> int:
        return int(self.meta["num_views"])

    @property
    def num_frames(self) -> int:
        return int(self.meta["num_frames"])

    @property
    def image_size(self) -> tuple[int, int]:
        h, w = self.meta["image_size"]
        return int(h), int(w)

    def video(self, view: int) -> Path:
        return self.path / view_name(view)

    def states(self) -> dict[str, np.ndarray] | None:
        """Per-frame ground truth, or None for footage without it."""
        if not self.meta["has_states"]:
            return None
        with np.load(self.path / STATES, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def read_view(self, view: int) -> np.ndarray:
        """Every frame of ``view`` decoded, (T, H, W, 3) RGB uint8; raises EpisodeError if the
        video decodes to another frame count or size than ``meta.json`` says."""
        path = self.video(view)
        cap = cv2.VideoCapture(str(path))
        out = np.empty((self.num_frames, *self.image_size, 3), np.uint8)
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if n >= self.num_frames:
                n += 1
                continue
            if frame.shape[:2] != self.image_size:
                cap.release()
                raise EpisodeError(f"{path}: frame {n} is {frame.shape[1]}x{frame.shape[0]}, meta.json says {self.image_size[1]}x{self.image_size[0]}")
            cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=out[n])
            n += 1
        cap.release()
        if n != self.num_frames:
            raise EpisodeError(f"{path}: decodes to {n} frames, meta.json says {self.num_frames} (truncated or corrupt video)")
        return out


def _video_header(path: Path) -> tuple[int, int, int]:
    """(frames, height, width) from the container, without decoding; raises EpisodeError."""
    if not path.exists():
        raise EpisodeError(f"{path}: missing")
    if path.stat().st_size == 0:
        raise EpisodeError(f"{path}: empty file (0 bytes)")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise EpisodeError(f"{path}: cannot be opened as a video (truncated or not a video)")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        h, w = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        ok, _ = cap.read()
        if not ok:
            raise EpisodeError(f"{path}: no decodable frame (truncated or corrupt video)")
    finally:
        cap.release()
    return n, h, w


def load_episode(path: str | Path) -> Episode:
    """Open and check an episode folder: meta.json, every view (exists, opens, frame count and
    size as meta.json says, equal across views), states.npz rows. Raises EpisodeError."""
    path = Path(path)
    try:
        check_path_encoding(path)
    except UserError as e:
        raise EpisodeError(str(e)) from None
    if not path.is_dir():
        raise EpisodeError(f"{path}: no such episode folder")
    meta_path = path / META
    if not meta_path.exists():
        raise EpisodeError(f"{meta_path}: missing")
    try:
        meta = read_json(meta_path)
        check_meta(meta)
    except (OSError, ValueError) as e:
        raise EpisodeError(f"{meta_path}: {e}") from None
    ep = Episode(path, meta)
    counts = {v: _video_header(ep.video(v)) for v in range(ep.num_views)}
    frames = {v: c[0] for v, c in counts.items()}
    if len(set(frames.values())) > 1:
        listed = ", ".join(f"{view_name(v)}: {n}" for v, n in frames.items())
        raise EpisodeError(f"{path}: views have unequal frame counts ({listed})")
    for v, (n, h, w) in counts.items():
        if n != ep.num_frames:
            raise EpisodeError(f"{ep.video(v)}: {n} frames, meta.json says {ep.num_frames}")
        if (h, w) != ep.image_size:
            raise EpisodeError(f"{ep.video(v)}: {w}x{h} frames, meta.json says {ep.image_size[1]}x{ep.image_size[0]}")
    if meta["has_states"]:
        states_path = path / STATES
        if not states_path.exists():
            raise EpisodeError(f"{states_path}: missing (meta.json says the episode has states)")
        try:
            with np.load(states_path, allow_pickle=False) as z:
                bad = [k for k in z.files if z[k].ndim == 0 or len(z[k]) not in (ep.num_frames, ep.num_frames - 1)]
        except Exception as e:
            raise EpisodeError(f"{states_path}: unreadable ({type(e).__name__}: {e})") from None
        if bad:
            raise EpisodeError(f"{states_path}: arrays {bad} do not have one row per frame")
    return ep


@dataclass
class Dataset:
    """The valid episodes of a dataset folder, and why the others were skipped.

    ``strict=True`` raises ``UserError`` at the first bad episode; the default skips bad episodes
    with one warning that says how many and why.
    """

    root: Path
    episodes: list[Episode]
    bad: list[tuple[Path, str]] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | Path, strict: bool = False) -> Dataset:
        root = Path(root)
        check_path_encoding(root)
        if not root.exists():
            raise UserError(f"{root}: no such dataset folder")
        if not root.is_dir():
            raise UserError(f"{root}: not a folder")
        manifest = read_manifest(root)
        names = [e["name"] for e in manifest["episodes"]]
        episodes, bad = [], []
        for name in names:
            try:
                episodes.append(load_episode(root / name))
            except EpisodeError as e:
                if strict:
                    raise UserError(str(e)) from None
                bad.append((root / name, str(e)))
        if bad:
            listed = "; ".join(problem for _, problem in bad[:3]) + (" ..." if len(bad) > 3 else "")
            warnings.warn(f"{root}: skipped {len(bad)} of {len(names)} episodes: {listed}", stacklevel=2)
        if not episodes:
            raise UserError(f"{root}: no valid episodes" + (f" ({len(bad)} bad)" if bad else ""))
        return cls(root, episodes, bad, manifest)

    def __len__(self) -> int:
        return len(self.episodes)


def read_manifest(root: Path) -> dict:
    """``manifest.json`` of a dataset folder; raises UserError naming the problem (not JSON, wrong types,
    an episode name that is not one safe folder name of the dataset, a name listed twice)."""
    path = Path(root) / MANIFEST
    if not path.exists():
        raise UserError(f"{path}: missing (not a tcn-robot dataset; record one with `tcn-robot record` or `tcn-robot import-videos`)")
    try:
        manifest = read_json(path)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: {e}") from None
    if not (isinstance(manifest, dict) and isinstance(manifest.get("episodes"), list)
            and all(isinstance(e, dict) and "name" in e for e in manifest["episodes"])
            and isinstance(manifest.get("settings", {}), dict)):
        raise UserError(f"{path}: malformed (expected an object with a list 'episodes' of {{'name': ...}})")
    names = [e["name"] for e in manifest["episodes"]]
    unsafe = [n for n in names if not is_safe_name(n)]
    if unsafe:
        raise UserError(f"{path}: names the episode {str(unsafe[0])[:80]!r}, which is not a folder of the dataset "
                        "(an episode name is one safe folder name)")
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise UserError(f"{path}: lists the episode {twice!r} twice")
    return manifest


def complete_episodes(root: Path) -> list[Path]:
    """Episode folders under ``root`` that were committed (never temporary ones), sorted by name."""
    return sorted(p for p in Path(root).iterdir() if p.is_dir() and is_safe_name(p.name) and (p / META).exists())


def write_manifest(root: Path, settings: dict) -> dict:
    """Rescan ``root`` and write ``manifest.json`` listing every committed episode (atomically)."""
    entries = []
    for p in complete_episodes(root):
        try:
            meta = read_json(p / META)
        except (OSError, ValueError):
            meta = {}
        if not isinstance(meta, dict):
            meta = {}
        keep = ("demonstrator", "embodiment", "seed", "num_frames", "fraction_in_bowl", "is_success", "behaviour",
                "behaviour_performed", "fraction_in_jar")
        entries.append({"name": p.name, **{k: meta[k] for k in keep if k in meta}})
    manifest = {"format": FORMAT_VERSION, "settings": settings, "episodes": entries}
    write_json(Path(root) / MANIFEST, manifest)
    return manifest


def load_demo(path: str | Path, view: int | None = None) -> np.ndarray:
    """The frames of the demonstration episode ``path``: (T, H, W, 3) from camera ``view``, or every
    view (T, V, H, W, 3) when ``view`` is None; raises ``UserError`` naming ``--demo`` and the problem."""
    try:
        demo = load_episode(path)
        if view is not None and not 0 <= view < demo.num_views:
            raise UserError(f"--demo: view {view} asked for, but {demo.path} has {demo.num_views} views")
        if view is not None:
            return demo.read_view(view)
        return np.stack([demo.read_view(v) for v in range(demo.num_views)], 1)
    except EpisodeError as e:
        raise UserError(f"--demo: {e}") from None


def choose_demo(episodes: list[Episode], where: str | Path, behaviour: str = "bowl") -> Episode:
    """The demo the episodes of the dataset ``where`` offer when none is named: the first successful
    human-proxy episode of ``behaviour`` (a ``paired`` episode's first views are its human-proxy
    views; an episode recorded before behaviours existed poured into the bowl)."""
    for ep in episodes:
        if (ep.meta.get("demonstrator") in ("human", "paired") and ep.meta.get("is_success")
                and ep.meta.get("behaviour", "bowl") == behaviour):
            return ep
    raise UserError(f"{where}: no successful human-proxy episode of the behaviour {behaviour!r} to use as the demo; "
                    "pass --demo EPISODE_DIR")
