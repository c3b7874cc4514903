"""Hostile probes, classes 3 and 5: resumable state is committed whole, and inputs are pinned.

A checkpoint that ``--resume`` relies on (TCN: weights, optimizer, step; RL: policy, normalization
statistics, replay buffer) appears as one file, so a write that fails at any instant leaves the
previous one resumable; a dead process's temporaries are cleaned by the next run. A run records a
digest of its encoder and demo, and ``replay`` and ``--resume`` refuse a changed one unless told;
checkpoints and policies with non-finite weights or impossible architectures are refused at load.
"""
import json
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from hostile import RL, TCN, copy, fails_cleanly, nothing_lost, snapshot
from tcn_robot.cli import main
from tcn_robot.io import TEMP_TAG
from tcn_robot.rl.policy_io import NORMALIZATION, REPLAY

SAC = [*RL, "--algo", "sac", "rl.sac.learning_starts=16", "rl.sac.batch_size=16", "rl.sac.net_arch=[16,16]"]


class Failed(Exception):
    pass


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# ----------------------------------------------------------------- 3. committed whole
@pytest.mark.parametrize("when", ["during the weights", "after the weights"])
def test_a_tcn_checkpoint_write_that_fails_leaves_the_last_one_resumable(made, tmp_path, monkeypatch, when):
    from tcn_robot.train import engine

    run = copy(made / "tcn", tmp_path / "tcn")
    previous = (run / "checkpoints/last.pt").read_bytes()
    real = torch.save

    def failing(state, path, *a, **k):
        if when == "during the weights":
            Path(path).write_bytes(b"half a checkpoint")
            raise OSError(5, "Input/output error")
        real(state, path, *a, **k)
        raise Failed

    monkeypatch.setattr(torch, "save", failing)
    with pytest.raises((OSError, Failed)):
        from tcn_robot.config import load_config
        from tcn_robot.train.tcn import train_tcn

        train_tcn(load_config(None, ["train.steps=6"], base=run / "config.yaml"), made / "data", run, resume=True, overwrite=False)
    monkeypatch.setattr(torch, "save", real)
    assert (run / "checkpoints/last.pt").read_bytes() == previous
    assert not list(run.rglob(f"*{TEMP_TAG}*"))
    assert main(["train-tcn", "--data", str(made / "data"), "--out", str(run), "--resume", "--steps", "6"]) == 0


@pytest.mark.parametrize("algo,entry", [("ppo", "policy"), ("ppo", NORMALIZATION), ("sac", "policy"), ("sac", NORMALIZATION),
                                        ("sac", REPLAY)])  # PPO keeps no replay buffer
def test_a_policy_checkpoint_write_that_fails_at_any_part_leaves_the_last_one_resumable(made, tmp_path, monkeypatch, algo, entry):
    run = tmp_path / "rl"
    argv = ["train-rl", "--out", str(run), "--reward", "tcn", "--encoder", str(made / "tcn/checkpoints/last.pt"),
            "--demo", str(made / "data/ep00000"), "--n-envs", "1", *(SAC if algo == "sac" else RL)]
    assert main([*argv, "--steps", "64"]) == 0
    last = run / "checkpoints/last.zip"
    previous = last.read_bytes()
    with zipfile.ZipFile(last) as z:
        names = z.namelist()
    assert NORMALIZATION in names and (REPLAY in names) == (algo == "sac")
    from stable_baselines3.common.base_class import BaseAlgorithm

    real_write, real_save = zipfile.ZipFile.writestr, BaseAlgorithm.save

    def failing_entry(self, name, data, *a, **k):
        if (name if isinstance(name, str) else name.filename) == entry:
            raise OSError(5, "Input/output error")
        return real_write(self, name, data, *a, **k)

    def failing_policy(self, path, *a, **k):
        Path(path).write_bytes(b"PK half a policy")
        raise OSError(5, "Input/output error")

    if entry == "policy":
        monkeypatch.setattr(BaseAlgorithm, "save", failing_policy)
    else:
        monkeypatch.setattr(zipfile.ZipFile, "writestr", failing_entry)
    assert main([*argv, "--steps", "128", "--resume"]) == 2
    monkeypatch.setattr(zipfile.ZipFile, "writestr", real_write)
    monkeypatch.setattr(BaseAlgorithm, "save", real_save)
    assert last.read_bytes() == previous
    assert not list(run.rglob(f"*{TEMP_TAG}*"))
    assert main([*argv, "--steps", "128", "--resume"]) == 0
    assert json.loads((run / "metrics.json").read_text())["steps"] == 128


def test_temporaries_of_a_dead_process_are_cleaned_by_the_next_run_and_a_live_ones_kept(made, tmp_path):
    run = copy(made / "tcn", tmp_path / "tcn")
    dead, alive = dead_pid(), subprocess.Popen(["sleep", "60"])
    try:
        stale = [run / f".last.pt{TEMP_TAG}{dead}-0.pt", run / "checkpoints" / f".best.pt{TEMP_TAG}{dead}-3.pt",
                 run / "tb" / f".events{TEMP_TAG}{dead}-1"]
        kept = run / "checkpoints" / f".last.pt{TEMP_TAG}{alive.pid}-0.pt"
        for f in [*stale, kept]:
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"x" * 1000)
        assert main(["train-tcn", "--data", str(made / "data"), "--out", str(run), "--resume", "--steps", "6"]) == 0
        assert not any(f.exists() for f in stale) and kept.exists()
    finally:
        alive.kill()
        alive.wait()


def test_a_killed_recordings_temporary_episode_is_cleaned_and_not_listed(tmp_path):
    args = ["record", "--out", str(tmp_path / "d"), "--episodes", "2", "--views", "2", "--image-size", "32",
            "env.episode_steps=10", "env.num_particles=10"]
    assert main([*args[:4], "1", *args[5:]]) == 0
    ghost = tmp_path / "d" / f".ep00001{TEMP_TAG}{dead_pid()}-0"
    ghost.mkdir()
    (ghost / "view0.mp4").write_bytes(b"half")
    assert main(args) == 0
    assert not ghost.exists() and (tmp_path / "d" / "ep00001" / "meta.json").is_file()


def test_a_frame_cache_temporary_of_a_dead_process_is_cleaned(made, tmp_path):
    data = copy(made / "data", tmp_path / "data")
    ghost = data / ".cache" / f".ep00000.npy{TEMP_TAG}{dead_pid()}-0.npy"
    ghost.parent.mkdir(exist_ok=True)
    ghost.write_bytes(b"\0" * 4096)
    assert main(["train-tcn", "--data", str(data), "--out", str(tmp_path / "r"), "--steps", "2", *TCN]) == 0
    assert not ghost.exists()


# ----------------------------------------------------------------- 5. inputs pinned
@pytest.fixture
def rl_run(made, tmp_path):
    """A PPO run on copies of the encoder and demo, so that a probe may change them."""
    enc = tmp_path / "inputs" / "enc.pt"
    enc.parent.mkdir()
    enc.write_bytes((made / "tcn/checkpoints/last.pt").read_bytes())
    demo = copy(made / "data/ep00000", tmp_path / "inputs" / "demo")
    run = tmp_path / "rl"
    assert main(["train-rl", "--out", str(run), "--reward", "tcn", "--encoder", str(enc), "--demo", str(demo),
                 "--steps", "64", "--n-envs", "1", *RL]) == 0
    return run, enc, demo


def _retrained(enc: Path) -> None:
    state = torch.load(enc, weights_only=True)
    key = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][key] = state["model"][key] + 0.01
    torch.save(state, enc)


@pytest.mark.parametrize("changed", ["encoder", "demo video", "demo meta"])
@pytest.mark.parametrize("command", ["replay", "resume"])
def test_a_changed_input_is_refused_by_replay_and_resume_unless_accepted(rl_run, tmp_path, capsys, changed, command):
    run, enc, demo = rl_run
    if changed == "encoder":
        _retrained(enc)
        named = enc
    elif changed == "demo video":
        (demo / "view0.mp4").write_bytes((demo / "view1.mp4").read_bytes())
        named = demo
    else:
        meta = json.loads((demo / "meta.json").read_text())
        meta["note"] = "edited"
        (demo / "meta.json").write_text(json.dumps(meta))
        named = demo
    argv = (["replay", "--run", str(run), "--episodes", "1", "--out", str(tmp_path / "rep")] if command == "replay"
            else ["train-rl", "--out", str(run), "--resume", "--steps", "96"])
    before = snapshot(run)
    fails_cleanly(capsys, argv, named, "changed since", "--accept-changed-inputs")
    nothing_lost(before)
    if changed != "demo video":  # a demo whose views no longer match its meta is refused for that, after acceptance
        assert main([*argv, "--accept-changed-inputs"]) == 0


def test_an_accepted_input_is_pinned_anew(rl_run, tmp_path, capsys):
    run, enc, _ = rl_run
    _retrained(enc)
    assert main(["train-rl", "--out", str(run), "--resume", "--steps", "96", "--accept-changed-inputs"]) == 0
    assert main(["replay", "--run", str(run), "--episodes", "1", "--out", str(tmp_path / "rep")]) == 0


def _state(made: Path) -> dict:
    return torch.load(made / "tcn/checkpoints/last.pt", weights_only=True)


DAMAGE = {
    "nan weight": lambda s: s["model"].__setitem__(next(iter(s["model"])), s["model"][next(iter(s["model"]))] * float("nan")),
    "inf weight": lambda s: s["model"].__setitem__(next(iter(s["model"])), s["model"][next(iter(s["model"]))] + float("inf")),
    "negative width": lambda s: s["model_config"].__setitem__("width", -8),
    "huge width": lambda s: s["model_config"].__setitem__("width", 10**9),
    "float size": lambda s: s["model_config"].__setitem__("image_size", 32.5),
    "unknown encoder": lambda s: s["model_config"].__setitem__("encoder", "evil"),
    "unknown key": lambda s: s["model_config"].__setitem__("payload", 1),
    "wrong shape": lambda s: s["model"].__setitem__(next(iter(s["model"])), torch.zeros(3, 3)),
    "not a tensor": lambda s: s["model"].__setitem__(next(iter(s["model"])), [1, 2, 3]),
    "no config": lambda s: s.pop("model_config"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_checkpoint_with_impossible_weights_or_architecture_is_refused_by_every_loader(made, tmp_path, capsys, damage):
    state = _state(made)
    DAMAGE[damage](state)
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    before = snapshot(made)
    data, demo = made / "data", made / "data/ep00000"
    fails_cleanly(capsys, ["evaluate", "--checkpoint", str(bad), "--data", str(data), "--out", str(tmp_path / "ev")], bad)
    fails_cleanly(capsys, ["embed", "--checkpoint", str(bad), "--data", str(data), "--out", str(tmp_path / "e.npz")], bad)
    fails_cleanly(capsys, ["train-rl", "--out", str(tmp_path / "rl"), "--reward", "tcn", "--encoder", str(bad), "--demo", str(demo),
                           "--steps", "32", *RL], bad)
    nothing_lost(before)
    assert not any((tmp_path / n).exists() for n in ("ev", "e.npz", "rl"))


def test_a_resumed_checkpoint_with_nan_weights_is_refused(made, tmp_path, capsys):
    run = copy(made / "tcn", tmp_path / "tcn")
    state = torch.load(run / "checkpoints/last.pt", weights_only=True)
    DAMAGE["nan weight"](state)
    torch.save(state, run / "checkpoints/last.pt")
    fails_cleanly(capsys, ["train-tcn", "--data", str(made / "data"), "--out", str(run), "--resume", "--steps", "6"], "last.pt", "NaN")


def test_a_policy_with_nan_weights_is_refused_by_replay(made, tmp_path, capsys):
    run = copy(made / "rl", tmp_path / "rl")
    best = run / "checkpoints/best.zip"
    with zipfile.ZipFile(best) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    import io

    policy = torch.load(io.BytesIO(entries["policy.pth"]), weights_only=True)
    key = next(k for k, v in policy.items() if v.is_floating_point())
    policy[key] = policy[key] * float("nan")
    buf = io.BytesIO()
    torch.save(policy, buf)
    entries["policy.pth"] = buf.getvalue()
    with zipfile.ZipFile(best, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)
    fails_cleanly(capsys, ["replay", "--run", str(run), "--episodes", "1", "--out", str(tmp_path / "rep")], "best.zip", "NaN")


@pytest.mark.parametrize("stats", [{"mean": float("nan"), "var": 1, "count": 1}, {"mean": 0, "var": -1, "count": 1},
                                   {"mean": 0}, [1, 2], "x" * 10])
def test_damaged_normalization_statistics_are_refused_in_one_line(made, tmp_path, capsys, stats):
    run = copy(made / "rl", tmp_path / "rl")
    last = run / "checkpoints/last.zip"
    with zipfile.ZipFile(last) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    entries[NORMALIZATION] = json.dumps(stats).encode()
    with zipfile.ZipFile(last, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)
    fails_cleanly(capsys, ["train-rl", "--out", str(run), "--resume", "--steps", "96"], "last.zip", "normalization")
