"""Hostile files, misuse and interruption: every command refuses bad input in one line, never runs
code from data, never changes what another command made, and stops cleanly.

Each test builds its broken or hostile input itself, asserts a non-zero exit without a traceback and
a message naming the file or key, and hashes every pre-existing file before and after.
"""
import base64
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tcn_robot.cli import main
from tcn_robot.envs import make_pour_config
from tcn_robot.video import read_video, write_video

from hostile import RL, SCRIPT, TCN, WORLD, Payload, fails_cleanly, snapshot


# ----------------------------------------------------------------- 1. no code from data
def test_a_planted_checkpoint_is_refused_by_every_command_that_loads_one(made, tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "model_config": Payload(marker)}, evil)
    before = snapshot(made)
    data = made / "data"
    fails_cleanly(capsys, ["embed", "--checkpoint", str(evil), "--data", str(data), "--out", str(tmp_path / "e.npz")], evil, "refused")
    fails_cleanly(capsys, ["evaluate", "--checkpoint", str(evil), "--data", str(data), "--out", str(tmp_path / "ev")], evil, "refused")
    fails_cleanly(capsys, ["train-rl", "--out", str(tmp_path / "rl"), "--reward", "tcn", "--encoder", str(evil),
                           "--demo", str(data / "ep00000"), *RL], evil, "refused")
    run = tmp_path / "tcn"  # a run whose last checkpoint was replaced by the payload
    shutil.copytree(made / "tcn", run)
    shutil.copy(evil, run / "checkpoints" / "last.pt")
    fails_cleanly(capsys, ["train-tcn", "--data", str(data), "--out", str(run), "--resume", "--steps", "6"], "last.pt", "refused")
    rl = tmp_path / "rl_run"  # an RL run whose reward encoder is the payload
    shutil.copytree(made / "rl", rl)
    cfg = (rl / "config.yaml").read_text().replace(str(made / "tcn/checkpoints/last.pt"), str(evil))
    (rl / "config.yaml").write_text(cfg)
    fails_cleanly(capsys, ["replay", "--run", str(rl), "--out", str(tmp_path / "replay")], evil, "changed since")
    fails_cleanly(capsys, ["replay", "--run", str(rl), "--out", str(tmp_path / "replay"), "--accept-changed-inputs"], evil, "refused")
    assert not marker.exists(), "the planted payload ran"
    assert snapshot(made) == before
    assert not (tmp_path / "ev").exists() and not (tmp_path / "rl").exists() and not (tmp_path / "replay").exists()


def _plant_in_policy(zip_path: Path, key: str, payload) -> None:
    """Rewrite the SB3 zip with ``key`` in its data as a pickled (cloudpickle-style) entry."""
    with zipfile.ZipFile(zip_path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    data = json.loads(entries["data"])
    data[key] = {":type:": "<class 'object'>", ":serialized:": base64.b64encode(pickle.dumps(payload)).decode()}
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(zip_path, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)


def test_a_policy_is_read_without_unpickling_anything(made, tmp_path, capsys):
    marker = tmp_path / "pwned"
    rl = tmp_path / "rl"
    shutil.copytree(made / "rl", rl)
    # a pickled entry that SB3 writes is rebuilt from the config, never unpickled: the replay works
    _plant_in_policy(rl / "checkpoints" / "best.zip", "policy_class", Payload(marker))
    pickle_beside = rl / "checkpoints" / "last.vecnormalize.pkl"  # what older versions kept beside a policy
    pickle_beside.write_bytes(pickle.dumps(Payload(marker)))
    assert main(["replay", "--run", str(rl), "--episodes", "1", "--out", str(tmp_path / "replay")]) == 0
    assert main(["train-rl", "--out", str(rl), "--resume", "--steps", "96"]) == 0
    # a pickled entry of any other name is refused
    _plant_in_policy(rl / "checkpoints" / "best.zip", "evil", Payload(marker))
    fails_cleanly(capsys, ["replay", "--run", str(rl), "--out", str(tmp_path / "replay2")], "best.zip", "refused", "evil")
    assert not marker.exists(), "the planted payload ran"


# ----------------------------------------------------------------- 2. nothing overwritten
def test_no_command_writes_into_what_another_command_made(made, tmp_path, capsys):
    before = snapshot(made)
    data, tcn, rl = made / "data", made / "tcn", made / "rl"
    ckpt = tcn / "checkpoints" / "last.pt"
    fails_cleanly(capsys, ["evaluate", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(tcn), "--overwrite"], tcn, "train-tcn")
    fails_cleanly(capsys, ["replay", "--run", str(rl), "--out", str(rl)], rl, "train-rl")
    fails_cleanly(capsys, ["train-tcn", "--data", str(data), "--out", str(data), *TCN], data, "record")
    fails_cleanly(capsys, ["train-tcn", "--data", str(data), "--out", str(data / "inside"), *TCN], data, "record")
    src = tmp_path / "videos"
    src.mkdir()
    for v in range(2):
        write_video(src / f"s_view{v}.mp4", (np.full((32, 32, 3), 9 * t, np.uint8) for t in range(5)), 10)
    fails_cleanly(capsys, ["import-videos", str(src), "--out", str(data)], data, "record")
    fails_cleanly(capsys, ["embed", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(data / "manifest.json")], "manifest.json")
    fails_cleanly(capsys, ["embed", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(data / "e.npz")], data)
    fails_cleanly(capsys, ["record", "--out", str(tcn), *WORLD, "--episodes", "1"], tcn, "train-tcn")
    # the same command again needs --resume or --overwrite; a file is never an output folder
    fails_cleanly(capsys, ["train-tcn", "--data", str(data), "--out", str(tcn), *TCN], tcn, "--resume or --overwrite")
    fails_cleanly(capsys, ["evaluate", "--baseline", "pixels", "--data", str(data), "--out", str(ckpt)], ckpt, "not a folder")
    stray = tmp_path / "notes"
    stray.mkdir()
    (stray / "todo.txt").write_text("mine")
    fails_cleanly(capsys, ["evaluate", "--baseline", "pixels", "--data", str(data), "--out", str(stray)], stray, "not made by tcn-robot")
    assert snapshot(made) == before and (stray / "todo.txt").read_text() == "mine"
    # an evaluation that fails on its input writes nothing
    fails_cleanly(capsys, ["evaluate", "--checkpoint", str(tmp_path / "missing.pt"), "--data", str(data), "--out", str(tmp_path / "ev")],
                  "missing.pt")
    assert not (tmp_path / "ev").exists()


# ----------------------------------------------------------------- 3. resume trusts the run
def test_resume_keeps_the_runs_config_and_refuses_what_cannot_change(made, tmp_path, capsys):
    run = tmp_path / "tcn"
    shutil.copytree(made / "tcn", run)
    data = made / "data"
    before = snapshot(run)
    fails_cleanly(capsys, ["train-tcn", "--data", str(data), "--out", str(run), "--resume", "model.width=16"], "model.width")
    fails_cleanly(capsys, ["train-tcn", "--data", str(data), "--out", str(run), "--resume", "--loss", "npairs"], "tcn.loss")
    other = tmp_path / "other_data"
    shutil.copytree(data, other)
    fails_cleanly(capsys, ["train-tcn", "--data", str(other), "--out", str(run), "--resume"], "was trained on", str(data))
    assert snapshot(run) == before
    # with no --config, the run's saved config (not the packaged default) is what continues; the budget may grow
    assert main(["train-tcn", "--data", str(data), "--out", str(run), "--resume", "--steps", "6"]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["steps"] == 6 and m["resumes"] == [{"step": 4, "changed": {"train.steps": [4, 6]}}]
    assert "width: 8" in (run / "config.yaml").read_text() and "steps: 6" in (run / "config.yaml").read_text()


# ----------------------------------------------------------------- 5. datasets that cannot train
def test_datasets_that_cannot_train_fail_inspect_strict_and_training_in_one_line(tmp_path, capsys):
    src = tmp_path / "videos"  # two cameras rigs of different resolutions, imported as they are
    src.mkdir()
    for seq, size in (("a", 32), ("b", 48)):
        for v in range(2):
            write_video(src / f"{seq}_view{v}.mp4", (np.full((size, size, 3), 20 * t + v, np.uint8) for t in range(8)), 10)
    data = tmp_path / "mixed"
    assert main(["import-videos", str(src), "--out", str(data)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(data), "--strict"]) == 1
    assert "different image sizes" in capsys.readouterr().out
    fails_cleanly(capsys, ["train-tcn", "--data", str(data), "--out", str(tmp_path / "r"), "train.val_episodes=0", *TCN[:5]],
                  data, "different image sizes")
    one = tmp_path / "one_view"
    one.mkdir()
    for seq in ("a", "b"):
        write_video(one / f"{seq}_view0.mp4", (np.full((32, 32, 3), 20 * t, np.uint8) for t in range(8)), 10)
    data1 = tmp_path / "single"
    assert main(["import-videos", str(one), "--out", str(data1)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(data1), "--strict"]) == 1
    fails_cleanly(capsys, ["train-tcn", "--data", str(data1), "--out", str(tmp_path / "r1"), "train.val_episodes=0", *TCN[:5]],
                  data1, "one view")
    assert not (tmp_path / "r").exists() and not (tmp_path / "r1").exists()


# ----------------------------------------------------------------- 6. the environment
@pytest.fixture
def read_only(tmp_path):
    """Make folders read-only for real (root ignores permission bits: then the immutable flag)."""
    made_ro = []

    def make(path: Path) -> Path:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-R", "+i", str(path)], check=True)
        else:
            for p in [path, *path.rglob("*")]:
                p.chmod(p.stat().st_mode & ~0o222)
        made_ro.append(path)
        with pytest.raises(OSError):
            (path / "probe").touch()
        return path

    yield make
    for path in made_ro:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-R", "-i", str(path)], check=True)
        else:
            for p in [path, *path.rglob("*")]:
                p.chmod(p.stat().st_mode | 0o200)


def test_read_only_folders_and_a_file_as_output_give_one_line(made, tmp_path, capsys, read_only, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(made / "data", data)
    shutil.rmtree(data / ".cache", ignore_errors=True)
    (tmp_path / "locked").mkdir()
    locked = read_only(tmp_path / "locked")
    fails_cleanly(capsys, ["evaluate", "--baseline", "pixels", "--data", str(data), "--out", str(locked / "ev")], locked, "cannot write")
    fails_cleanly(capsys, ["record", "--out", str(locked), *WORLD, "--episodes", "1"], locked, "cannot write")
    # a read-only dataset: its frame cache goes to the user's cache instead
    read_only(data)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["evaluate", "--baseline", "pixels", "--data", str(data), "--out", str(tmp_path / "ev"), "--demo", str(data / "ep00000")]) == 0
    assert list((tmp_path / "cache" / "tcn-robot" / "frames").rglob("ep00000.npy"))


def test_a_ctrl_c_an_import_swallows_still_stops_the_command_before_training(made, tmp_path, monkeypatch, capsys):
    """Some imports catch the KeyboardInterrupt of an early Ctrl-C; the request outlives it, and the
    training loop stops before its first step."""
    import tcn_robot.train.run as run
    from tcn_robot import processes

    real = run.train

    def swallowed(*args, **kwargs):
        try:
            processes.interrupt(signal.SIGINT, None)
        except KeyboardInterrupt:
            pass  # as a library's except clause would
        return real(*args, **kwargs)

    monkeypatch.setattr(run, "train", swallowed)
    out = tmp_path / "run"
    assert main(["train-tcn", "--data", str(made / "data"), "--out", str(out), *TCN]) == 130
    assert capsys.readouterr().err.strip().endswith("tcn-robot train-tcn: interrupted")
    assert not (out / "metrics.json").exists()
    monkeypatch.setattr(run, "train", real)  # the next command starts with no interrupt pending
    assert main(["train-tcn", "--data", str(made / "data"), "--out", str(tmp_path / "next"), *TCN, "train.steps=2"]) == 0


def test_ctrl_c_during_start_up_and_sigterm_during_training_print_one_line(made, tmp_path):
    for delay in (0.3, 1.0):  # while the command imports its modules (torch takes seconds)
        p = subprocess.Popen([SCRIPT, "train-tcn", "--data", str(made / "data"), "--out", str(tmp_path / f"r{delay}"), *TCN],
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        time.sleep(delay)
        os.killpg(p.pid, signal.SIGINT)
        err = p.communicate(timeout=60)[1]
        assert p.returncode in (130, -signal.SIGINT) and "Traceback" not in err, err
    # SIGTERM mid-run, before the first step-based checkpoint: the run saves and resumes from there
    run = tmp_path / "run"
    p = subprocess.Popen([SCRIPT, "train-tcn", "--data", str(made / "data"), "--out", str(run), "--steps", "100000",
                          *TCN, "train.checkpoint_every=100000", "train.val_every=100000"],
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 60
    while not list((run / "tb").glob("events*")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    p.terminate()
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 130 and err.strip().splitlines()[-1].endswith("interrupted") and "Traceback" not in err, err
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert 0 < state["step"] < 100000 and state["wall_seconds"] > 0


# ----------------------------------------------------------------- 7. smaller ones
def test_a_checkpoint_path_holding_an_equals_sign_is_a_path(made, tmp_path, capsys):
    sweep = tmp_path / "sweep" / "lr=1e-3"
    sweep.mkdir(parents=True)
    shutil.copy(made / "tcn/checkpoints/last.pt", sweep / "last.pt")
    demo = ["--demo", str(made / "data" / "ep00000")]
    assert main(["evaluate", "--checkpoint", str(sweep / "last.pt"), "--data", str(made / "data"), "--out", str(tmp_path / "ev"), *demo]) == 0
    assert main(["evaluate", "--checkpoint", f"mine={sweep / 'last.pt'}", "--data", str(made / "data"),
                 "--out", str(tmp_path / "ev2"), *demo]) == 0
    assert "mine" in json.loads((tmp_path / "ev2" / "metrics.json").read_text())["encoders"]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def test_recording_workers_stop_when_the_recorder_is_killed(tmp_path):
    p = subprocess.Popen([SCRIPT, "record", "--out", str(tmp_path / "d"), "--episodes", "40", "--workers", "2",
                          "--image-size", "32", "env.num_particles=10"], stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    workers = []
    while len(workers) < 2 and time.time() < deadline:
        workers = [c for c in _children(p.pid) if "record" in Path(f"/proc/{c}/cmdline").read_text(errors="ignore")
                   or "multiprocessing" in Path(f"/proc/{c}/cmdline").read_text(errors="ignore")]
        time.sleep(0.2)
    assert workers, "no worker started"
    p.kill()
    p.wait()
    deadline = time.time() + 30
    while any(_running(w) for w in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_running(w) for w in workers), "workers outlived the recorder"


def test_a_crashed_run_resumes_with_one_curve_and_its_whole_wall_time(made, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tcn_robot.config import load_config
    from tcn_robot.train.tcn import train_tcn

    cfg = load_config(None, [*TCN, "train.steps=10", "train.checkpoint_every=4", "train.log_every=1", "train.val_every=100"])
    calls = {"n": 0}

    class Crash(Exception):
        pass

    original_step = torch.optim.AdamW.step

    def step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 7:
            raise Crash  # killed after logging steps 5-6 past the checkpoint at step 4
        return original_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    with pytest.raises(Crash):
        train_tcn(cfg, made / "data", tmp_path / "run")
    monkeypatch.setattr(torch.optim.AdamW, "step", original_step)
    first = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=True)
    assert first["step"] == 4
    m = train_tcn(cfg, made / "data", tmp_path / "run", resume=True)
    assert m["steps"] == 10 and m["wall_seconds"] >= first["wall_seconds"]
    acc = EventAccumulator(str(tmp_path / "run/tb"))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("train/loss")]
    assert steps == list(range(1, 11)), steps


def test_a_run_folder_replays_from_anywhere_and_names_what_moved(made, tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    shutil.copytree(made / "data", work / "data")
    shutil.copytree(made / "tcn", work / "tcn")
    monkeypatch.chdir(work)
    assert main(["train-rl", "--out", "rl", "--reward", "tcn", "--encoder", "tcn/checkpoints/last.pt", "--demo", "data/ep00000",
                 "--steps", "32", "--n-envs", "1", *RL]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["replay", "--run", str(work / "rl"), "--episodes", "1", "--out", "replay", "--policy", "random"]) == 0
    video = read_video(elsewhere / "replay" / "episode_0.mp4")
    # the last frame is the episode's own end, not the first frame of the next (auto-reset) episode
    from tcn_robot.envs import PourEnv

    env = PourEnv(make_pour_config(episode_steps=20, num_particles=10, image_size=32))
    from tcn_robot.rl import EVAL_SEED

    env.reset(seed=EVAL_SEED)
    rng = np.random.default_rng(EVAL_SEED)
    for _ in range(20):
        env.step(rng.uniform(-1, 1, size=(1, 3)).astype(np.float32)[0])
    end = env.render_views()[0].astype(int)
    env.reset(seed=EVAL_SEED + 1)
    next_start = env.render_views()[0].astype(int)
    env.close()
    last = video[-1, :, :32].astype(int)
    assert np.abs(last - end).mean() < np.abs(last - next_start).mean() / 3
    shutil.move(work / "tcn", tmp_path / "moved")
    fails_cleanly(capsys, ["replay", "--run", str(work / "rl"), "--out", "replay2"], "rl.encoder", "missing")
