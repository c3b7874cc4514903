"""The TCN training engine: learning, exact resume, NaN handling, embed, DDP under torchrun."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tcn_robot import UserError
from tcn_robot.checkpoint import load_checkpoint, load_embedder
from tcn_robot.cli import main
from tcn_robot.config import load_config
from tcn_robot.data.cache import FrameCache
from tcn_robot.data.episodes import Dataset
from tcn_robot.data.record import record_dataset
from tcn_robot.envs import make_pour_config
from tcn_robot.evaluate.metrics import mean_alignment_error
from tcn_robot.models import EmbeddingNet
from tcn_robot.models import embed_episode
from tcn_robot.train.tcn import train_tcn

FAST = ["model.image_size=32", "model.width=16", "model.head_channels=32", "model.hidden=64",
        "tcn.sequences_per_batch=3", "tcn.frames_per_sequence=8", "train.log_every=1", "train.val_episodes=2"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """8 short episodes (2 views, 32 px); the last 2 are validation."""
    root = tmp_path_factory.mktemp("tcn_data")
    # demonstrations only: a random-exploration episode has little time structure to align, which
    # made the validation error of these tiny runs swing with the thread count
    record_dataset(make_pour_config(episode_steps=40, num_particles=20), root, 8, 2, 32, 0, "human=0.5,robot=0.5")
    return root


def cfg(*extra):
    return load_config(None, FAST + list(extra))


def test_training_lowers_the_loss_and_the_alignment_error_below_random_init(dataset, tmp_path):
    c = cfg("train.steps=300", "train.val_every=300", "train.checkpoint_every=300", "train.lr=1e-3")
    cache = FrameCache(Dataset.open(dataset), progress=False)
    val = [cache.arrays[i] for i in (6, 7)]
    random_errors = []
    for seed in range(5):
        torch.manual_seed(seed)
        random_errors.append(mean_alignment_error([embed_episode(EmbeddingNet(c.model), a) for a in val]))
    m = train_tcn(c, dataset, tmp_path / "run")
    assert m["train_loss_final"] < m["train_loss_first"]
    trained = mean_alignment_error([embed_episode(load_embedder(tmp_path / "run/checkpoints/last.pt"), a) for a in val])
    assert trained == pytest.approx(m["val"]["alignment_error"])
    assert trained < min(random_errors), (trained, random_errors)


@pytest.mark.parametrize("mode, loss", [("multiview", "triplet"), ("multiview", "npairs"), ("multiview", "infonce"),
                                        ("multiview", "lifted"), ("singleview", "triplet"), ("singleview", "infonce")])
def test_resume_continues_exactly_where_the_run_stopped(dataset, tmp_path, mode, loss):
    extra = [f"tcn.mode={mode}", f"tcn.loss={loss}", "tcn.pos_radius=2", "tcn.neg_radius=5", "tcn.exclusion_radius=1",
             "train.checkpoint_every=3", "train.val_every=3"]
    whole = train_tcn(cfg("train.steps=6", *extra), dataset, tmp_path / "whole")
    train_tcn(cfg("train.steps=3", *extra), dataset, tmp_path / "split")
    resumed = train_tcn(cfg("train.steps=6", *extra), dataset, tmp_path / "split", resume=True)
    a = load_checkpoint(tmp_path / "whole/checkpoints/last.pt")
    b = load_checkpoint(tmp_path / "split/checkpoints/last.pt")
    assert a["history"] == b["history"] and len(a["history"]) == 6
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert whole["val"] == resumed["val"]


def test_a_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(dataset, tmp_path, monkeypatch):
    c = cfg("train.steps=4", "train.checkpoint_every=2", "train.val_every=100")
    train_tcn(cfg("train.steps=2", "train.checkpoint_every=2", "train.val_every=100"), dataset, tmp_path)
    good = (tmp_path / "checkpoints/last.pt").read_bytes()
    from tcn_robot.train import tcn

    real = tcn.TCNMethod.contrast
    monkeypatch.setattr(tcn.TCNMethod, "contrast", lambda self, z, batch: real(self, z, batch) * float("nan"))
    with pytest.raises(UserError, match=r"loss became nan at step 3.*last good checkpoint .*last.pt is intact"):
        train_tcn(c, dataset, tmp_path, resume=True)
    assert (tmp_path / "checkpoints/last.pt").read_bytes() == good


@pytest.mark.parametrize("native", [True, False])
def test_bf16_autocast_runs_where_the_device_computes_bf16_natively(dataset, tmp_path, monkeypatch, native):
    """train.amp trains in bf16 on a device with native bf16 (device.bf16_autocast) and in float32
    elsewhere; the checkpoint holds float32 weights either way."""
    from tcn_robot.train import engine

    monkeypatch.setattr(engine, "bf16_autocast", lambda device: native)
    dtypes = set()
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: dtypes.add(out.dtype) if isinstance(module, torch.nn.Conv2d) else None)
    try:
        m = train_tcn(cfg("train.steps=2", "train.val_every=100"), dataset, tmp_path)
    finally:
        hook.remove()
    assert (torch.bfloat16 in dtypes) == native and torch.float32 in dtypes  # validation runs in float32
    assert np.isfinite(m["train_loss_final"])
    assert {v.dtype for v in load_checkpoint(tmp_path / "checkpoints/last.pt")["model"].values() if v.is_floating_point()} == {torch.float32}


@pytest.mark.parametrize("schedule, warmup", [("constant", 0), ("constant", 3), ("cosine", 0), ("cosine", 4)])
def test_learning_rate_schedule_matches_torchs_schedulers(schedule, warmup):
    """engine.lr_factor against torch's LinearLR warm-up then constant or CosineAnnealingLR (SequentialLR)."""
    from tcn_robot.train.engine import lr_factor

    total = 20
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    after = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup) if schedule == "cosine"
             else torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0))
    steps = [torch.optim.lr_scheduler.LinearLR(opt, 1 / warmup, 1.0, warmup - 1), after] if warmup else [after]
    sched = torch.optim.lr_scheduler.SequentialLR(opt, steps, milestones=[warmup]) if warmup else after
    for step in range(total):
        assert lr_factor(step, total, schedule, warmup) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12), step
        opt.step()
        sched.step()


def test_training_applies_the_schedule_at_every_step(dataset, tmp_path, monkeypatch):
    from tcn_robot.train.engine import lr_factor

    seen = []
    real = torch.optim.AdamW.step
    monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, *a, **k: (seen.append(self.param_groups[0]["lr"]), real(self, *a, **k))[1])
    train_tcn(cfg("train.steps=6", "train.val_every=100", "train.lr=1e-3", "train.schedule=cosine", "train.warmup_steps=2"),
              dataset, tmp_path)
    assert seen == pytest.approx([1e-3 * lr_factor(s, 6, "cosine", 2) for s in range(6)])
    assert seen[0] == pytest.approx(5e-4) and seen[1] == pytest.approx(1e-3)  # warm-up, then decay
    assert seen[1] == seen[2] > seen[3] > seen[4] > seen[5] > 0


def test_refuses_to_overwrite_a_run_and_resume_needs_one(dataset, tmp_path):
    train_tcn(cfg("train.steps=1", "train.val_every=100"), dataset, tmp_path)
    with pytest.raises(UserError, match="already holds the output of an earlier `tcn-robot train-tcn`"):
        train_tcn(cfg("train.steps=1"), dataset, tmp_path)
    with pytest.raises(UserError, match="holds no run to resume"):
        train_tcn(cfg("train.steps=1"), dataset, tmp_path / "empty", resume=True)


def test_embed_writes_every_episode_and_view(dataset, tmp_path):
    train_tcn(cfg("train.steps=2", "train.val_every=100"), dataset, tmp_path / "run")
    ckpt = tmp_path / "run/checkpoints/last.pt"
    assert main(["embed", "--checkpoint", str(ckpt), "--data", str(dataset), "--out", str(tmp_path / "e.npz"), "--device", "cpu"]) == 0
    z = np.load(tmp_path / "e.npz")
    assert sorted(z.files) == ["_tcn_robot_embed", *[f"ep{i:05d}" for i in range(8)]]
    assert str(z["_tcn_robot_embed"]) == str(ckpt.resolve())
    assert z["ep00003"].shape == (2, 41, 32)
    net = load_embedder(ckpt)
    frames = FrameCache(Dataset.open(dataset), progress=False).arrays[3]
    direct = net.embed(frames[:, 1]).numpy()
    assert np.allclose(z["ep00003"][1], direct, atol=1e-5)
    assert np.allclose(np.linalg.norm(direct, axis=1), 1.0, atol=1e-5)


def test_torchrun_two_processes_train_with_ddp_and_write_one_checkpoint(dataset, tmp_path):
    out = tmp_path / "ddp"
    script = Path(sys.executable).with_name("tcn-robot")  # the console script, as the README runs it under torchrun
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--no-python",
           str(script), "train-tcn", "--data", str(dataset), "--out", str(out), "--steps", "3", "--device", "cpu",
           *FAST, "train.val_every=3", "train.checkpoint_every=3"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 3
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.pt", "last.pt"]


@pytest.mark.parametrize("loss", ["triplet", "npairs", "infonce", "lifted"])
def test_sequence_negatives_average_one_contrast_per_sequence(loss):
    """negatives=sequence: the batch loss is the mean of the loss on each sequence alone, and
    differs from negatives=batch, where other sequences' rows are negatives too."""
    from tcn_robot.losses import InfoNCELoss, LiftedStructuredLoss, NPairsLoss, TripletLoss
    from tcn_robot.train.tcn import TCNMethod

    g = torch.Generator().manual_seed(0)
    batch = {"anchor": torch.randint(0, 255, (8, 2, 2, 3), generator=g, dtype=torch.uint8),
             "positive": torch.randint(0, 255, (8, 2, 2, 3), generator=g, dtype=torch.uint8),
             "episode": torch.tensor([3, 3, 3, 3, 7, 7, 7, 7]), "time": torch.tensor([1, 5, 9, 20, 0, 4, 8, 30])}
    proj = torch.randn(12, 4, generator=g)
    embed = lambda frames: torch.nn.functional.normalize(frames.float().flatten(1) @ proj, dim=1)  # noqa: E731
    full = load_config(None, [f"tcn.loss={loss}", "tcn.negatives=sequence"])
    cfg = full.tcn
    both = torch.cat([batch["anchor"], batch["positive"]])
    value = TCNMethod(full).contrast(embed(both), batch)
    one = {"triplet": lambda a, p, y: TripletLoss(cfg.margin, gather=False)(torch.cat([a, p]), torch.cat([y, y])),
           "npairs": lambda a, p, y: NPairsLoss(cfg.reg_lambda, gather=False)(a, p, y, y),
           "infonce": lambda a, p, y: InfoNCELoss(cfg.temperature, symmetric=True, gather=False)(a, p, y, y),
           "lifted": lambda a, p, y: LiftedStructuredLoss(cfg.lifted_margin, gather=False)(torch.cat([a, p]), torch.cat([y, y]))}[loss]
    a, p = embed(batch["anchor"]), embed(batch["positive"])
    y = torch.arange(8)
    expected = (one(a[:4], p[:4], y[:4]) + one(a[4:], p[4:], y[4:])) / 2
    assert value.item() == pytest.approx(expected.item(), abs=1e-6)
    whole = TCNMethod(load_config(None, [f"tcn.loss={loss}", "tcn.negatives=batch"])).contrast(embed(both), batch)
    assert whole.item() == pytest.approx(one(a, p, y).item(), abs=1e-6) and whole.item() != pytest.approx(value.item())
