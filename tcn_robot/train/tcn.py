"""``tcn-robot train-tcn``: Time-Contrastive Networks (Sermanet et al. 2017).

Multi-view TCN (the paper's default): the anchor and the positive are the same instant seen
from two cameras; the other instants of the same sequence are its negatives (or, with
``tcn.negatives=batch``, every other row of the batch). Single-view TCN: the positive
is a frame within ``pos_radius`` of the anchor in the same video, the explicit negative one at
least ``neg_radius`` away. Losses: triplet (semi-hard mining by default), npairs, InfoNCE,
lifted structured (``losses.py``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import UserError, distributed, runs
from ..config import Config, TCNSection, resume_changes, save_config, to_yaml
from ..data.cache import FrameCache
from ..data.datasets import MultiViewTCNBatches, SingleViewTCNBatches
from ..data.episodes import Dataset
from ..evaluate.metrics import mean_alignment_error
from ..io import write_json
from ..losses import LOSSES, InfoNCELoss, LiftedStructuredLoss, NPairsLoss, TripletLoss
from ..models import EmbeddingNet
from .engine import Engine


class TCNMethod:
    """Batch -> loss for multi-view or single-view TCN with any of the four losses, with negatives
    from the anchor's own sequence (``negatives="sequence"``) or from the whole batch."""

    def __init__(self, cfg: TCNSection) -> None:
        if cfg.mode not in ("multiview", "singleview"):
            raise UserError(f"tcn.mode must be multiview or singleview, got {cfg.mode!r}")
        if cfg.loss not in LOSSES:
            raise UserError(f"tcn.loss must be one of {', '.join(LOSSES)}, got {cfg.loss!r}")
        if cfg.negatives not in ("sequence", "batch"):
            raise UserError(f"tcn.negatives must be sequence or batch, got {cfg.negatives!r}")
        self.cfg = cfg
        self.gathers = cfg.negatives == "batch"  # the engine scales a gathered loss for DDP's mean
        g = self.gathers
        self.fn = {
            "triplet": TripletLoss(cfg.margin, cfg.mining, gather=g),
            "npairs": NPairsLoss(cfg.reg_lambda, gather=g),
            "infonce": InfoNCELoss(cfg.temperature, symmetric=cfg.symmetric and cfg.mode == "multiview",
                                   exclusion_radius=cfg.exclusion_radius, gather=g),
            "lifted": LiftedStructuredLoss(cfg.lifted_margin, gather=g),
        }[cfg.loss]

    def loss(self, embed, batch: dict) -> tuple[torch.Tensor, dict]:
        multi = self.cfg.mode == "multiview"
        keys = ("anchor", "positive") if multi else ("anchor", "positive", "negative")
        frames = torch.cat([batch[k] for k in keys])
        z = embed(frames)
        b = len(batch["anchor"])
        anchor, cand = z[:b], z[b:]
        # labels unique across ranks: this rank's rows are offset by rank * b
        label = torch.arange(b, device=z.device) + distributed.rank() * b
        ep = batch["episode"].to(z.device)
        t = batch["time"].to(z.device)
        if multi:
            cand_label, cand_t, cand_ep = label, t, ep
        else:
            cand_label = torch.cat([label, -1 - label])  # the explicit negatives match no anchor
            cand_t = torch.cat([batch["time_positive"], batch["time_negative"]]).to(z.device)
            cand_ep = torch.cat([ep, ep])
        rows = (anchor, cand, label, cand_label, torch.stack([ep, t], 1), torch.stack([cand_ep, cand_t], 1))
        if self.gathers:
            value = self._loss(*rows)
        else:
            value = torch.stack([self._loss(*self._select(rows, ep == e, cand_ep == e)) for e in torch.unique(ep)]).mean()
        return value, {"frames": len(frames)}

    @staticmethod
    def _select(rows, a_mask, c_mask):
        anchor, cand, label, cand_label, a_ids, c_ids = rows
        return anchor[a_mask], cand[c_mask], label[a_mask], cand_label[c_mask], a_ids[a_mask], c_ids[c_mask]

    def _loss(self, anchor, cand, label, cand_label, a_ids, c_ids) -> torch.Tensor:
        if self.cfg.loss in ("triplet", "lifted"):
            return self.fn(torch.cat([anchor, cand]), torch.cat([label, cand_label]))
        if self.cfg.loss == "npairs":
            return self.fn(anchor, cand, label, cand_label)
        return self.fn(anchor, cand, label, cand_label, a_ids, c_ids)


def split_episodes(cache: FrameCache, val_episodes: int) -> tuple[list[int], list[int]]:
    n = len(cache)
    if val_episodes < 0 or val_episodes >= n:
        raise UserError(f"tcn.val_episodes={val_episodes} leaves no training episode out of {n}")
    return list(range(n - val_episodes)), list(range(n - val_episodes, n))


class _Subset:
    """The frame cache restricted to some episodes (what the batch sources index)."""

    def __init__(self, cache: FrameCache, index: list[int]) -> None:
        self.arrays = [cache.arrays[i] for i in index]
        self.episodes = [cache.episodes[i] for i in index]
        self.dataset_root = cache.dataset_root

    def __len__(self) -> int:
        return len(self.arrays)


def embed_episode(net: EmbeddingNet, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(T, V, H, W, 3) uint8 -> (V, T, D) embeddings."""
    t, v = frames.shape[:2]
    z = net.embed(np.ascontiguousarray(frames.reshape(t * v, *frames.shape[2:])), batch_size)
    return z.view(t, v, -1).transpose(0, 1).numpy()


def make_source(cfg: TCNSection, data: _Subset, seed: int):
    rank, world = distributed.rank(), distributed.world_size()
    if cfg.mode == "multiview":
        return MultiViewTCNBatches(data, cfg.sequences_per_batch, cfg.frames_per_sequence, seed, rank, world)
    return SingleViewTCNBatches(data, cfg.sequences_per_batch, cfg.frames_per_sequence, cfg.pos_radius, cfg.neg_radius, seed, rank, world)


def train_tcn(cfg: Config, data: str | Path, out: str | Path, resume: bool = False, overwrite: bool = False,
              cache_dir: str | Path | None = None) -> dict:
    """Train a TCN on the dataset ``data`` into the run folder ``out``; returns the final metrics.

    Checks the output folder, the resumed run's config and data, and the dataset before writing;
    a resumed run continues with its own saved config (only its budget and intervals may change)."""
    out, data = Path(out), Path(data).resolve()
    mode = runs.check_output(out, "train-tcn", resume, overwrite)
    changes = {}
    if mode == "resume":
        changes = resume_changes(out, cfg, "train-tcn")
        trained_on = runs.output_inputs(out).get("data")
        if trained_on and trained_on != str(data):
            raise UserError(f"{out}: was trained on {trained_on}; resuming it cannot switch to --data {data}")
        if not runs.checkpoint(out, "last.pt").is_file():
            raise UserError(f"--resume: {out} has no checkpoint yet; start it again with --overwrite")
    cache = FrameCache(Dataset.open(data), cache_dir=cache_dir, progress=distributed.is_main())
    train_idx, val_idx = split_episodes(cache, cfg.tcn.val_episodes)
    train_data = _Subset(cache, train_idx)
    method = TCNMethod(cfg.tcn)
    source = make_source(cfg.tcn, train_data, cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    net = EmbeddingNet(cfg.model)

    def validate(model: EmbeddingNet) -> dict:
        return {"alignment_error": mean_alignment_error([embed_episode(model, cache.arrays[i]) for i in val_idx])}

    multiview_val = bool(val_idx) and all(cache.arrays[i].shape[1] > 1 for i in val_idx)
    engine = Engine(out, cfg.train, net, method, source, cfg.augment, validate if multiview_val else None,
                    extra={"config": to_yaml(cfg), "data": str(data)})
    if mode == "resume":
        engine.restore(runs.checkpoint(out, "last.pt"))
    if distributed.is_main():
        runs.claim_output(out, "train-tcn", mode, inputs={"data": str(data)})
        if changes:
            runs.record_resume(out, engine.step, changes)
        save_config(cfg, out)
    distributed.barrier()
    metrics = engine.fit(resumed=mode == "resume")
    metrics.update(mode=cfg.tcn.mode, loss=cfg.tcn.loss, train_episodes=len(train_idx), val_episodes=len(val_idx),
                   resumes=runs.resumes(out))
    if distributed.is_main():
        write_json(out / runs.METRICS, metrics)
    return metrics
