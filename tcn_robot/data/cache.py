"""The frame cache: videos decoded once into uint8 arrays, memory-mapped, so that training never
decodes MP4 in its hot loop.

Each episode becomes ``<cache>/<name>.npy`` of shape (T, V, H, W, 3) next to a signature of its
source files (size and modification time of every video and of meta.json); a changed source is
decoded again. The cache folder defaults to ``<dataset>/.cache``, or, when the dataset is read-only,
to ``$XDG_CACHE_HOME/tcn-robot/frames/<hash of the dataset's path>`` (``~/.cache`` by default);
``--cache-dir`` names another.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import UserError
from ..io import atomic_write_text
from .episodes import META, Dataset, Episode, EpisodeError


def _signature(ep: Episode) -> dict:
    files = [ep.path / META] + [ep.video(v) for v in range(ep.num_views)]
    return {f.name: [f.stat().st_size, f.stat().st_mtime_ns] for f in files}


def default_cache_dir(dataset_root: Path) -> Path:
    """``<dataset>/.cache`` if it can be written, else a folder for this dataset in the user's cache."""
    local = Path(dataset_root) / ".cache"
    try:
        local.mkdir(exist_ok=True)
        probe = local / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
        return local
    except OSError:
        home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        key = hashlib.sha1(str(Path(dataset_root).resolve()).encode()).hexdigest()[:16]
        return home / "tcn-robot" / "frames" / key


class FrameCache:
    """Decoded frames of every valid episode of ``dataset``.

    ``arrays[i]`` is a read-only memmap (T, V, H, W, 3) for ``episodes[i]``. An episode whose
    video fails to decode is dropped with a warning (or raises ``UserError`` when ``strict``).
    """

    def __init__(self, dataset: Dataset, cache_dir: str | Path | None = None, strict: bool = False, progress: bool = True) -> None:
        self.dataset_root = dataset.root
        self.root = Path(cache_dir) if cache_dir is not None else default_cache_dir(dataset.root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"{self.root}: cannot write the frame cache there ({e.strerror}); pass --cache-dir") from None
        self.episodes: list[Episode] = []
        self.arrays: list[np.ndarray] = []
        self.bad: list[tuple[Path, str]] = list(dataset.bad)
        for ep in tqdm(dataset.episodes, desc="frame cache", unit="episode", disable=not progress, leave=False):
            try:
                self.arrays.append(self._load(ep))
                self.episodes.append(ep)
            except EpisodeError as e:
                if strict:
                    raise UserError(str(e)) from None
                self.bad.append((ep.path, str(e)))
                warnings.warn(f"skipped {ep.path}: {e}", stacklevel=2)
        if not self.episodes:
            raise UserError(f"{dataset.root}: no episode could be decoded")

    def _load(self, ep: Episode) -> np.ndarray:
        data, sig_path = self.root / f"{ep.name}.npy", self.root / f"{ep.name}.json"
        sig = _signature(ep)
        if data.exists() and sig_path.exists():
            try:
                if json.loads(sig_path.read_text()) == sig:
                    return np.load(data, mmap_mode="r")
            except (json.JSONDecodeError, ValueError, OSError):
                pass  # a damaged cache entry is rebuilt
        shape = (ep.num_frames, ep.num_views, *ep.image_size, 3)
        tmp = data.with_name(f".{data.stem}.{os.getpid()}.tmp.npy")
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        try:
            for v in range(ep.num_views):
                arr[:, v] = ep.read_view(v)
            arr.flush()
            del arr
            os.replace(tmp, data)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        atomic_write_text(sig_path, json.dumps(sig))
        return np.load(data, mmap_mode="r")

    def __len__(self) -> int:
        return len(self.episodes)

    def labels(self, i: int) -> np.ndarray | None:
        """The five attribute labels per frame of episode ``i``, (T, 5) int64, or None without states."""
        from ..envs import ATTRIBUTES

        states = self.episodes[i].states()
        if states is None:
            return None
        return np.stack([states[a].astype(np.int64) for a in ATTRIBUTES], axis=1)
