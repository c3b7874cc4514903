"""Device selection: ``auto`` picks CUDA, then MPS, then the CPU."""
from __future__ import annotations

import os

import torch

from . import UserError

DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str) -> torch.device:
    """The torch device for ``name`` (one of ``DEVICES``); under torchrun, CUDA takes ``LOCAL_RANK``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but torch sees no CUDA device")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps asked for, but torch sees no MPS device")
    if name not in DEVICES:
        raise UserError(f"device must be one of {', '.join(DEVICES)}; got {name!r}")
    return torch.device(name)


def bf16_autocast(device: torch.device) -> bool:
    """Whether bf16 autocast pays on ``device``: CUDA, and CPUs with native bf16 arithmetic (AVX512-BF16
    or AMX; about 2x faster training of the small CNN on such a CPU, benchmarks/train_speed.py).
    Elsewhere a CPU emulates bf16 and is slower than float32."""
    if device.type == "cuda":
        return True
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False
