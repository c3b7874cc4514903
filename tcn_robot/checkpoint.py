"""Checkpoints: model weights, its architecture, the resolved run config, the optimizer and the
random states; written atomically. ``load_embedder`` rebuilds the network from a checkpoint alone.

A checkpoint holds tensors and plain data only (numbers, strings, lists, dicts; the config as YAML
text) and is read with ``torch.load(weights_only=True)``: a file that would need to unpickle any
other object, as a planted payload would, is refused, never run.
"""
from __future__ import annotations

import pickle
from dataclasses import asdict
from pathlib import Path

import torch

from . import UserError
from .config import ModelConfig
from .io import AtomicFile
from .models import EmbeddingNet


def save_checkpoint(path: str | Path, state: dict) -> None:
    """``state`` to ``path`` in one step: a kill or a full disk leaves the previous checkpoint whole."""
    with AtomicFile(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(f"{path}: refused: it holds Python objects other than tensors and plain data "
                        "(not a tcn-robot checkpoint; loading it could run code)") from None
    except Exception as e:
        raise UserError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not (isinstance(state, dict) and isinstance(state.get("model"), dict) and isinstance(state.get("model_config"), dict)):
        raise UserError(f"{path}: not a tcn-robot checkpoint (no model weights and architecture)")
    bad = next((k for k, v in state["model"].items() if not isinstance(v, torch.Tensor)
                or (v.is_floating_point() and not torch.isfinite(v).all())), None)
    if bad is not None:
        raise UserError(f"{path}: refused: its weight {bad!r} holds NaN or infinite values (or is not a tensor)")
    try:
        model_config(state["model_config"])
    except ValueError as e:
        raise UserError(f"{path}: refused: impossible architecture ({e})") from None
    return state


def model_config(saved: dict) -> ModelConfig:
    """The architecture a checkpoint names, checked against the config's types and ranges; raises ValueError."""
    from .config import check_model

    try:
        cfg = ModelConfig(**{**saved, "pretrained": ""})
    except TypeError as e:
        raise ValueError(str(e)) from None
    check_model(cfg)
    return cfg


def model_state(model: torch.nn.Module, model_cfg: ModelConfig) -> dict:
    """The parts of a checkpoint that ``load_embedder`` needs."""
    inner = getattr(model, "module", model)
    inner = getattr(inner, "_orig_mod", inner)  # torch.compile wrapper
    return {"model": inner.state_dict(), "model_config": asdict(model_cfg)}


def load_embedder(path: str | Path, device: str | torch.device = "cpu") -> EmbeddingNet:
    """The embedding network of a checkpoint, in eval mode on ``device``."""
    state = load_checkpoint(path)
    try:
        net = EmbeddingNet(model_config(state["model_config"]))
        net.load_state_dict(state["model"])
    except (TypeError, RuntimeError, UserError) as e:
        raise UserError(f"{path}: its weights do not fit its architecture ({str(e).splitlines()[0]})") from None
    return net.to(device).eval()
