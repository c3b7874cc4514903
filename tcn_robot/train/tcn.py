"""``tcn-robot train-tcn``: Time-Contrastive Networks (Sermanet et al. 2017).

Multi-view TCN (the paper's default): the anchor and the positive are the same instant seen
from two cameras; the other instants of the same sequence are its negatives (or, with
``tcn.negatives=batch``, every other row of the batch). Single-view TCN: the positive
is a frame within ``pos_radius`` of the anchor in the same video, the explicit negative one at
least ``neg_radius`` away. Losses: triplet (semi-hard mining by default), npairs, InfoNCE,
lifted structured (``losses.py``). Bridges between a human video and the robot's camera when no
twin recordings hold both, on human and robot demonstrations drawn beside each batch: with
``tcn.align_weight`` > 0 they are aligned by temporal cycle consistency (``losses.CycleConsistencyLoss``),
with ``tcn.domain_weight`` > 0 their embodiment is made unreadable from the embedding by domain
confusion (``losses.DomainConfusionLoss``), or, with ``tcn.domain_frames=batch``, the embodiment of every
frame of the TCN batch itself. With ``tcn.order_weight`` > 0 a head orders the batch's frames of each
episode in time (the arrow of time, ``losses.ArrowOfTimeLoss``), so that the embedding carries what
changes irreversibly: the liquid that has left the cup and where it lies.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from .. import distributed
from ..config import Config
from ..data.augment import build_augment
from ..data.datasets import EmbodimentSequences, Joined, MultiViewTCNBatches, SingleViewTCNBatches
from ..losses import ArrowOfTimeLoss, CycleConsistencyLoss, DomainConfusionLoss, InfoNCELoss, LiftedStructuredLoss, NPairsLoss, TripletLoss
from ..models import EmbeddingNet
from .method import Method


class TCNMethod(Method):
    """Multi-view or single-view TCN with any of the four losses, with negatives from the anchor's
    own sequence (``tcn.negatives=sequence``) or from the whole batch (gathered over ranks)."""

    name = "tcn"

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = c = cfg.tcn
        self.augment = build_augment(cfg.augment, cfg.model.image_size)
        self.gathers = c.negatives == "batch"  # the engine scales a gathered loss for DDP's mean
        g = self.gathers
        self.fn = {
            "triplet": TripletLoss(c.margin, c.mining, gather=g),
            "npairs": NPairsLoss(c.reg_lambda, gather=g),
            "infonce": InfoNCELoss(c.temperature, symmetric=c.symmetric and c.mode == "multiview",
                                   exclusion_radius=c.exclusion_radius, gather=g),
            "lifted": LiftedStructuredLoss(c.lifted_margin, gather=g),
        }[c.loss]
        self.align = CycleConsistencyLoss(c.align_temperature, c.align_variance_lambda) if c.align_weight > 0 else None
        self.domain = (DomainConfusionLoss(cfg.model.embedding_dim, c.domain_hidden, weight=c.domain_weight)
                       if c.domain_weight > 0 else None)
        self.order = ArrowOfTimeLoss(cfg.model.embedding_dim, c.order_hidden, c.order_gap) if c.order_weight > 0 else None
        self.batch_domain = self.domain is not None and c.domain_frames == "batch"  # labels the TCN batch's frames
        # draws human and robot demonstrations beside the TCN batch
        self.embodied = self.align is not None or (self.domain is not None and not self.batch_domain)

    def source(self, data, seed: int, rank: int, world: int):
        c = self.cfg
        if c.mode == "multiview":
            tcn = MultiViewTCNBatches(data, c.sequences_per_batch, c.frames_per_sequence, seed, rank, world, self.batch_domain)
        else:
            tcn = SingleViewTCNBatches(data, c.sequences_per_batch, c.frames_per_sequence, c.pos_radius, c.neg_radius, seed, rank, world,
                                       self.batch_domain)
        if not self.embodied:
            return tcn
        return Joined(tcn, EmbodimentSequences(data, c.align_sequences, c.align_frames, seed, rank, world))

    def _keys(self) -> tuple[str, ...]:
        return ("anchor", "positive") if self.cfg.mode == "multiview" else ("anchor", "positive", "negative")

    def forward(self, net: EmbeddingNet, batch: dict) -> tuple[torch.Tensor, dict]:
        frames = torch.cat([batch[k] for k in self._keys()])
        n = len(frames)
        if self.embodied:  # one pass for all: the same batch statistics
            frames = torch.cat([frames, batch["align_frames"].flatten(0, 1)])
        z = net(self.inputs(net, frames, self.augment))
        loss = self.contrast(z[:n], batch)
        logs = {"frames": len(frames)}
        # per rank: undo the engine's scaling of a gathered loss (see Method.gathers)
        per_rank = distributed.world_size() if self.gathers else 1
        if self.align is not None:
            s, t = batch["align_time"].shape
            align = self.align(z[n:].view(s, t, -1), batch["align_time"].to(z.device))
            loss = loss + self.cfg.align_weight / per_rank * align
            logs["align_loss"] = align.detach()
        if self.domain is not None:
            if self.batch_domain:
                read, labels = z[:n], batch["embodiment"]
            else:
                read, labels = z[n:], batch["align_embodiment"].repeat_interleave(batch["align_time"].shape[1])
            domain, accuracy = self.domain(read, labels.to(z.device))
            loss = loss + domain / per_rank
            logs.update(domain_loss=domain.detach(), domain_accuracy=accuracy)
        if self.order is not None:
            b = len(batch["anchor"])
            order, accuracy = self.order(z[:b], z[b:2 * b], batch["episode"].to(z.device), batch["time"].to(z.device))
            loss = loss + self.cfg.order_weight / per_rank * order
            logs.update(order_loss=order.detach(), order_accuracy=accuracy)
        return loss, logs

    def contrast(self, z: torch.Tensor, batch: dict) -> torch.Tensor:
        """The loss of the embeddings ``z`` of the batch's anchors, positives (and, single-view,
        negatives), stacked in that order."""
        multi = self.cfg.mode == "multiview"
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
            return self.fn.contrast(*rows)
        return torch.stack([self.fn.contrast(*self._select(rows, ep == e, cand_ep == e)) for e in torch.unique(ep)]).mean()

    @staticmethod
    def _select(rows, a_mask, c_mask):
        anchor, cand, label, cand_label, a_ids, c_ids = rows
        return anchor[a_mask], cand[c_mask], label[a_mask], cand_label[c_mask], a_ids[a_mask], c_ids[c_mask]


def train_tcn(cfg: Config, data: str | Path, out: str | Path, resume: bool = False, overwrite: bool = False,
              cache_dir: str | Path | None = None) -> dict:
    """``tcn-robot train-tcn``: ``train.run.train`` with the TCN method; returns the final metrics."""
    from .run import train

    return train(replace(cfg, train=replace(cfg.train, method="tcn")), data, out, "train-tcn", resume, overwrite, cache_dir)
