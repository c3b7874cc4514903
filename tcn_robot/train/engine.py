"""One training loop for every method: TCN and the pretext trainers.

A method (``method.py``) supplies a batch source and ``forward(net, batch) -> (loss, logs)``; the
engine owns the rest: device choice, bf16 autocast (CUDA and bf16-capable CPUs), channels-last, optional
``torch.compile``, DDP under ``torchrun`` (network and method heads together), gradient clipping,
atomic checkpoints of both with every random state (``--resume`` continues exactly where the run
stopped), NaN/inf detection, TensorBoard scalars, a progress bar, and periodic validation that
keeps the best checkpoint.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .. import UserError, distributed
from ..checkpoint import load_checkpoint, model_state, save_checkpoint
from ..config import TrainConfig
from ..device import bf16_autocast, pick_device
from ..io import write_json
from ..models import EmbeddingNet
from ..processes import StopRequest
from ..runs import BEST_WEIGHTS, LAST_WEIGHTS, METRICS, TENSORBOARD, checkpoint
from .method import Method, Objective


def lr_factor(step: int, total: int, schedule: str, warmup: int) -> float:
    """Multiplier of ``train.lr`` for the update after ``step`` updates of ``total``: a linear warm-up over
    ``warmup`` steps, then constant or a cosine decay to 0 at ``total`` (SGDR without restarts,
    Loshchilov & Hutter 2017). A function of the step alone, so a resumed run continues the same curve."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    span = max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, span) / span))


class Engine:
    """Trains the network ``net`` with ``method`` on batches from ``source`` into ``run``.

    Args:
        run: the run folder (checkpoints/, tb/, metrics.json).
        cfg: engine settings.
        net: the embedding network (on the CPU; moved here).
        method: the objective, with its own parameters and buffers (moved, wrapped and saved with ``net``).
        source: object with ``sample(rng)``.
        validate: optional ``fn(net, method) -> dict`` of figures (lower is better); ``cfg.select_best``
            names the one that picks the best checkpoint (or the first figure, when that one is absent).
        extra: stored in every checkpoint (the resolved config, for example).
    """

    def __init__(self, run: Path, cfg: TrainConfig, net: EmbeddingNet, method: Method, source,
                 validate: Callable[[EmbeddingNet, Method], dict] | None = None, extra: dict | None = None) -> None:
        self.run, self.cfg, self.source = Path(run), cfg, source
        self.validate_fn, self.extra = validate, extra or {}
        self.device = pick_device(cfg.device)
        distributed.init_from_env(self.device)
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.objective = Objective(net, method).to(self.device).to(memory_format=torch.channels_last)
        self.net, self.method = self.objective.net, self.objective.method
        self.model: nn.Module = self.objective
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # a method may leave parts unused (a head on the embedding only); buffers (memory banks) are
            # kept equal by the method itself
            self.model = nn.parallel.DistributedDataParallel(self.objective, device_ids=ids, find_unused_parameters=True)
        if cfg.compile:
            self.model = torch.compile(self.model)
        self.optimizer = torch.optim.AdamW(self.objective.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.rng = np.random.default_rng([cfg.seed, self.rank])
        self.step, self.best, self.history, self.val_log = 0, math.inf, [], []
        self.wall_before, self.frames_seen = 0.0, 0  # wall time and frames of the run before a resume

    # ----------------------------------------------------------------- state
    def _state(self) -> dict:
        return {
            **model_state(self.net, self.net.cfg),
            "method": self.method.state_dict(),
            "method_name": self.method.name,
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "best": self.best,
            "history": self.history,
            "val_log": self.val_log,
            "wall_seconds": self.wall_before + time.perf_counter() - self.started,
            "frames_seen": self.frames_seen,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "numpy_rng": self.rng.bit_generator.state,
            **self.extra,
        }

    def restore(self, path: Path) -> None:
        """Continue from the checkpoint ``path``: weights, optimizer, step, history and every random
        state. Call before ``fit(resumed=True)``; raises ``UserError`` when it does not fit the model."""
        state = load_checkpoint(path)
        try:
            if state.get("method_name", self.method.name) != self.method.name:
                raise ValueError(f"it was trained by {state['method_name']}, not {self.method.name}")
            self.net.load_state_dict(state["model"])
            self.method.load_state_dict(state.get("method", {}))
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise UserError(f"{path}: does not fit this run's model ({str(e).splitlines()[0]})") from None
        self.step, self.best, self.history, self.val_log = state["step"], state["best"], state["history"], state["val_log"]
        self.wall_before, self.frames_seen = state.get("wall_seconds", 0.0), state.get("frames_seen", 0)
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        rng_state = state["numpy_rng"]
        if self.rank != 0:  # every rank saved the same file: rank 0's; re-derive the others
            self.rng = np.random.default_rng([self.cfg.seed, self.rank, self.step])
        else:
            self.rng.bit_generator.state = rng_state

    def _save(self, name: str) -> None:
        if distributed.is_main():
            save_checkpoint(checkpoint(self.run, name), self._state())
        self.saved_at = time.perf_counter()

    # ----------------------------------------------------------------- loop
    def fit(self, steps: int | None = None, resumed: bool = False) -> dict:
        """Train until ``steps`` (default ``cfg.steps``), from scratch or, with ``resumed``, from the
        state ``restore`` loaded; returns the final metrics. Ctrl-C or SIGTERM stops between two steps
        after saving ``last.pt`` (then raises ``KeyboardInterrupt``)."""
        total = steps if steps is not None else self.cfg.steps
        last = checkpoint(self.run, LAST_WEIGHTS)
        self.started = self.saved_at = time.perf_counter()
        if not resumed:
            torch.manual_seed(self.cfg.seed + self.rank)
        writer = None
        if distributed.is_main():
            from torch.utils.tensorboard import SummaryWriter

            # a resumed run hides what an interrupted one logged after its last checkpoint (all of it, when the
            # run stopped before its first checkpoint)
            logged = (self.run / TENSORBOARD).is_dir() and any((self.run / TENSORBOARD).iterdir())
            writer = SummaryWriter(str(self.run / TENSORBOARD), purge_step=self.step + 1 if logged else None)
        amp = self.cfg.amp and bf16_autocast(self.device)
        bar = tqdm(total=total, initial=self.step, desc="train", unit="step", disable=not distributed.is_main(), mininterval=1.0)
        frames_before, recent = self.frames_seen, []
        self.objective.train()
        try:
            with StopRequest() as stop:
                while self.step < total:
                    batch = self.source.sample(self.rng)
                    with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
                        loss, logs = self.model(batch)
                    value = loss.item()
                    if not math.isfinite(value):
                        good = f"the last good checkpoint {last} is intact" if last.exists() else "no checkpoint was written yet"
                        raise UserError(f"loss became {value} at step {self.step + 1}; training stopped ({good}). "
                                        "Lower train.lr or check the data.")
                    self.optimizer.zero_grad(set_to_none=True)
                    lr = self.cfg.lr * lr_factor(self.step, total, self.cfg.schedule, self.cfg.warmup_steps)
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr
                    # a loss over the gathered global batch is scaled so that DDP's mean over ranks gives its gradient
                    (loss * (self.world if self.method.gathers else 1)).backward()
                    grad_norm = nn.utils.clip_grad_norm_(self.objective.parameters(), self.cfg.grad_clip)
                    self.optimizer.step()
                    self.step += 1
                    self.frames_seen += logs.get("frames", 0) * self.world
                    recent = (recent + [value])[-20:]
                    self.history.append(value)
                    fps = (self.frames_seen - frames_before) / (time.perf_counter() - self.started)
                    bar.update(1)
                    if self.step % self.cfg.log_every == 0 or self.step == total:
                        bar.set_postfix(loss=f"{np.mean(recent):.4f}", frames_per_s=f"{fps:.0f}")
                        if writer:
                            writer.add_scalar("train/loss", value, self.step)
                            writer.add_scalar("train/grad_norm", float(grad_norm), self.step)
                            writer.add_scalar("train/lr", lr, self.step)
                            writer.add_scalar("train/frames_per_s", fps, self.step)
                            for k, v in logs.items():
                                writer.add_scalar(f"train/{k}", v, self.step)
                    if self.validate_fn and (self.step % self.cfg.val_every == 0 or self.step == total):
                        self._validate(writer)
                    minutes = self.cfg.checkpoint_minutes
                    if (self.step % self.cfg.checkpoint_every == 0 or self.step == total or stop.requested
                            or (minutes and time.perf_counter() - self.saved_at > 60 * minutes)):
                        self._save(LAST_WEIGHTS)
                        distributed.barrier()
                    if stop.requested:
                        raise KeyboardInterrupt
        finally:
            bar.close()
            if writer:
                writer.close()
        wall = self.wall_before + time.perf_counter() - self.started
        metrics = {
            "steps": self.step,
            "device": str(self.device),
            "world_size": self.world,
            "train_loss_final": float(np.mean(self.history[-20:])) if self.history else None,
            "train_loss_first": float(np.mean(self.history[:20])) if self.history else None,
            "frames_per_second": self.frames_seen / wall if wall > 0 else 0.0,
            "wall_seconds": wall,
            "best_val": self.best if math.isfinite(self.best) else None,
            "val": self.val_log[-1] if self.val_log else None,
        }
        if distributed.is_main():
            write_json(self.run / METRICS, metrics)
        return metrics

    def _validate(self, writer) -> None:
        if not distributed.is_main():
            distributed.barrier()
            return
        self.objective.eval()
        figures = self.validate_fn(self.net, self.method)
        self.objective.train()
        key = self.cfg.select_best if self.cfg.select_best in figures else next(iter(figures), None)
        figures["step"] = self.step
        self.val_log.append(figures)
        if writer:
            for k, v in figures.items():
                if k != "step":
                    writer.add_scalar(f"val/{k}", v, self.step)
        if key is not None and figures[key] < self.best:
            self.best = figures[key]
            self._save(BEST_WEIGHTS)
        distributed.barrier()
