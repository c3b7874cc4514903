"""Atomic file writes: a killed run never leaves a half-written file under the final name."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` (numpy values allowed) as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n")


def check_resume(run: Path, checkpoint: Path, resume: bool) -> None:
    """A run folder holds one run: refuse to overwrite it unless resuming; resuming needs ``checkpoint``."""
    from . import UserError

    if checkpoint.exists() and not resume:
        raise UserError(f"{run} already holds a run; pass --resume to continue it or choose another --out")
    if resume and not checkpoint.exists():
        raise UserError(f"--resume: no checkpoint at {checkpoint}")
