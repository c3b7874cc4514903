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
from ..io import FILES_BASE, AtomicFile, atomic_write_text, clean_stale_temporaries, ensure_open_files
from .episodes import META, Dataset, Episode, EpisodeError


CACHE_MARK = ".tcn-robot-cache"  # marks a folder as a frame cache, whose files tcn-robot may replace


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


def check_cache_dir(path: Path, dataset_root: Path) -> None:
    """A folder the user names for the cache (``--cache-dir``) must be new, empty or a frame cache already
    (its mark ``.tcn-robot-cache``), and lie outside every folder another command made, so that the
    cache never overwrites a file it did not make."""
    from ..runs import owner_of

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"--cache-dir {path}: exists and is not a folder")
    if path.is_dir() and not (path / CACHE_MARK).is_file() and any(path.iterdir()):
        raise UserError(f"--cache-dir {path}: holds files that are not a tcn-robot frame cache; name a new or empty folder")
    owner = owner_of(path)
    if owner is not None and owner != Path(dataset_root).resolve():
        raise UserError(f"--cache-dir {path}: inside {owner}, the output of another command; name a folder outside it")


class FrameCache:
    """Decoded frames of every valid episode of ``dataset``.

    ``arrays[i]`` is a read-only memmap (T, V, H, W, 3) for ``episodes[i]``. An episode whose
    video fails to decode is dropped with a warning (or raises ``UserError`` when ``strict``).
    """

    def __init__(self, dataset: Dataset, cache_dir: str | Path | None = None, strict: bool = False, progress: bool = True) -> None:
        self.dataset_root = dataset.root
        self.root = Path(cache_dir) if cache_dir is not None else default_cache_dir(dataset.root)
        if cache_dir is not None:
            check_cache_dir(self.root, dataset.root)
        ensure_open_files(FILES_BASE + len(dataset.episodes), f"{len(dataset.episodes)} memory-mapped episodes")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not (self.root / CACHE_MARK).is_file():
                atomic_write_text(self.root / CACHE_MARK, json.dumps({"kind": "frame-cache"}))
            clean_stale_temporaries(self.root)
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
        with AtomicFile(data, needed=int(np.prod(shape))) as tmp:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            # claim the blocks now: a memory map that writes into a full disk dies of SIGBUS instead of raising
            with open(tmp, "r+b") as f:
                os.posix_fallocate(f.fileno(), 0, os.path.getsize(tmp))
            for v in range(ep.num_views):
                arr[:, v] = ep.read_view(v)
            arr.flush()
            del arr
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
