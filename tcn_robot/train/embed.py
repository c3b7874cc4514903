"""``tcn-robot embed``: per-episode, per-view embeddings of a dataset with a checkpoint."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..checkpoint import load_embedder
from ..data.cache import FrameCache
from ..data.episodes import Dataset
from ..io import atomic_write_bytes
from ..device import pick_device
from ..runs import check_file_output
from ..models import embed_episode


EMBED_ENTRY = "_tcn_robot_embed"  # the npz entry that says which checkpoint made the file


def _made_by_embed(path: Path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            return EMBED_ENTRY in z.files
    except (OSError, ValueError):
        return False


def embed_dataset(checkpoint: str | Path, data: str | Path, out: str | Path, device: str = "auto", overwrite: bool = False,
                  cache_dir: str | Path | None = None) -> int:
    """Write ``out`` (npz): one (V, T, D) float32 array per episode, keyed by episode name, and the
    entry ``_tcn_robot_embed`` (the checkpoint's path). ``out`` must be a new ``.npz`` file outside the
    folders other commands own, or one that embed wrote (with ``overwrite``)."""
    out = Path(out)
    check_file_output(out, ".npz", _made_by_embed, overwrite)
    net = load_embedder(checkpoint, pick_device(device))
    cache = FrameCache(Dataset.open(data), cache_dir=cache_dir)
    arrays = {ep.name: embed_episode(net, arr).astype(np.float32)
              for ep, arr in tqdm(zip(cache.episodes, cache.arrays), total=len(cache), desc="embed", unit="episode")}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays, **{EMBED_ENTRY: np.array(str(Path(checkpoint).resolve()))})
    atomic_write_bytes(out, buf.getvalue())
    return len(arrays)
