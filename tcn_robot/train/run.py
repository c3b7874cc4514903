"""``tcn-robot train-tcn`` and ``tcn-robot pretrain``: train the shared network with one method.

The dataset's last ``train.val_episodes`` episodes are held out; every ``train.val_every`` steps
the run measures the multi-view alignment error on them (the figure every method shares) and the
method's own pretext error, and keeps the checkpoint with the best ``train.select_best``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import UserError, distributed, runs
from ..config import Config, resume_changes, save_config, to_yaml
from ..data.cache import FrameCache
from ..data.episodes import Dataset
from ..evaluate.metrics import mean_alignment_error
from ..io import write_json
from ..methods import method_class
from ..models import EmbeddingNet, embed_episode
from .engine import Engine
from .method import Method


class EpisodeSubset:
    """The frame cache restricted to some episodes (what batch sources index): ``arrays[i]`` is
    episode ``episodes[i]``'s (T, V, H, W, 3) frames."""

    def __init__(self, cache: FrameCache, index: list[int]) -> None:
        self.arrays = [cache.arrays[i] for i in index]
        self.episodes = [cache.episodes[i] for i in index]
        self.dataset_root = cache.dataset_root

    def __len__(self) -> int:
        return len(self.arrays)


def split_episodes(cache: FrameCache, val_episodes: int) -> tuple[list[int], list[int]]:
    n = len(cache)
    if val_episodes < 0 or val_episodes >= n:
        raise UserError(f"train.val_episodes={val_episodes} leaves no training episode out of {n}")
    return list(range(n - val_episodes)), list(range(n - val_episodes, n))


@runs.owns_outputs
def train(cfg: Config, data: str | Path, out: str | Path, kind: str = "pretrain", resume: bool = False,
          overwrite: bool = False, cache_dir: str | Path | None = None) -> dict:
    """Train ``cfg.train.method`` on the dataset ``data`` into the run folder ``out`` (the output of
    the command ``kind``); returns the final metrics.

    Checks the output folder, the resumed run's config, data and checkpoint, and the dataset before
    writing; a resumed run continues with its own saved config (only its budget and intervals change).
    A run stopped before its first checkpoint (killed, or a full disk) is resumed from step 0."""
    out, data = Path(out), Path(data).resolve()
    cfg = method_class(cfg.train.method).configure(cfg)
    mode = runs.check_output(out, kind, resume, overwrite)
    runs.check_apart(out, {"--data": data})
    changes = {}
    if mode == "resume":
        trained_on = runs.output_inputs(out).get("data")
        if trained_on and trained_on != str(data):
            raise UserError(f"{out}: was trained on {trained_on}; resuming it cannot switch to --data {data}")
        if runs.checkpoint(out, runs.LAST_WEIGHTS).is_file():
            changes = resume_changes(out, cfg, kind)
        elif not (out / runs.CONFIG).is_file():
            raise UserError(f"--resume: {out} stopped before it saved its config; run the original command again with --overwrite")
    cache = FrameCache(Dataset.open(data), cache_dir=cache_dir, progress=distributed.is_main())
    train_idx, val_idx = split_episodes(cache, cfg.train.val_episodes)
    torch.manual_seed(cfg.train.seed)
    net = EmbeddingNet(cfg.model)
    method: Method = method_class(cfg.train.method)(cfg)
    source = method.source(EpisodeSubset(cache, train_idx), cfg.train.seed, distributed.rank(), distributed.world_size())
    val = [cache.arrays[i] for i in val_idx]

    def validate(net: EmbeddingNet, method: Method) -> dict:
        figures = {}
        if val and all(a.shape[1] > 1 for a in val):
            figures["alignment_error"] = mean_alignment_error([embed_episode(net, a) for a in val])
        if val:  # the same held-out frames at every validation
            figures.update(method.validate(net, val, np.random.default_rng(cfg.train.seed)))
        return figures

    engine = Engine(out, cfg.train, net, method, source, validate if val else None,
                    extra={"config": to_yaml(cfg), "data": str(data)})
    resumed = mode == "resume" and runs.checkpoint(out, runs.LAST_WEIGHTS).is_file()
    if resumed:
        engine.restore(runs.checkpoint(out, runs.LAST_WEIGHTS))
    if distributed.is_main():
        runs.claim_output(out, kind, mode, inputs={"data": str(data)})
        if changes:
            runs.record_resume(out, engine.step, changes)
        save_config(cfg, out)
    distributed.barrier()
    metrics = engine.fit(resumed=resumed)
    metrics.update(method=cfg.train.method, train_episodes=len(train_idx), val_episodes=len(val_idx), resumes=runs.resumes(out))
    if cfg.train.method == "tcn":
        metrics.update(mode=cfg.tcn.mode, loss=cfg.tcn.loss)
    if distributed.is_main():
        write_json(out / runs.METRICS, metrics)
    return metrics
