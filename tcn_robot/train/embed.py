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
from .tcn import embed_episode


def embed_dataset(checkpoint: str | Path, data: str | Path, out: str | Path, device: str = "auto") -> int:
    """Write ``out`` (npz): one (V, T, D) float32 array per episode, keyed by episode name."""
    net = load_embedder(checkpoint, pick_device(device))
    cache = FrameCache(Dataset.open(data))
    arrays = {ep.name: embed_episode(net, arr).astype(np.float32)
              for ep, arr in tqdm(zip(cache.episodes, cache.arrays), total=len(cache), desc="embed", unit="episode")}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(out, buf.getvalue())
    return len(arrays)
