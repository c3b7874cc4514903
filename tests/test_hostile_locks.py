"""Hostile probes, class 2: one writer per output. A command into a folder another command holds is
refused in one line naming the holder (command and process id); the lock of a process that died is
taken over; the claim is decided on resolved paths (symlinks and ``..``)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hostile import RL, SCRIPT, TCN, WORLD, copy, error_lines, fails_cleanly, nothing_lost, snapshot
from tcn_robot.cli import main
from tcn_robot.runs import LOCK
from tcn_robot.video import write_video

HOLD = """
import sys, time
from pathlib import Path
from tcn_robot import runs
runs.lock_output(Path(sys.argv[1]), (int(sys.argv[2]), int(sys.argv[3])))
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder():
    """Start a process that holds an output folder (optionally one shard of it) until the test ends."""
    procs = []

    def hold(folder: Path, shard=(0, 1)) -> subprocess.Popen:
        folder.mkdir(parents=True, exist_ok=True)
        p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), *map(str, shard)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "held"
        procs.append(p)
        return p

    yield hold
    for p in procs:
        p.kill()
        p.wait()


def commands(made: Path, tmp: Path) -> dict[str, tuple[list[str], Path]]:
    """For each command: its argv into the output folder it resumes or overwrites, a copy of one it made."""
    record = ["record", "--out", str(tmp / "data"), "--episodes", "2", "--views", "2", "--image-size", "32",
              "--demonstrator", "human=0.5,robot=0.5", "env.episode_steps=20", "env.num_particles=10"]
    assert main(record) == 0
    data = made / "data"
    src = tmp / "videos"
    src.mkdir()
    for v in range(2):
        write_video(src / f"s_view{v}.mp4", [__import__("numpy").full((32, 32, 3), 9 * t, "uint8") for t in range(6)], 10)
    imported = tmp / "imported"
    assert main(["import-videos", str(src), "--out", str(imported)]) == 0
    tcn, rl = copy(made / "tcn", tmp / "tcn"), copy(made / "rl", tmp / "rl")
    ev, rep = tmp / "ev", tmp / "rep"
    assert main(["evaluate", "--baseline", "pixels", "--data", str(data), "--out", str(ev), "--demo", str(data / "ep00000")]) == 0
    assert main(["replay", "--run", str(rl), "--episodes", "1", "--out", str(rep), "--policy", "random"]) == 0
    pretrain = tmp / "pretrain"
    assert main(["pretrain", "--method", "rotation", "--data", str(data), "--out", str(pretrain), "--steps", "2", *TCN]) == 0
    return {
        "record": ([*record[:3], "--episodes", "3", *record[5:]], tmp / "data"),
        "import-videos": (["import-videos", str(src), "--out", str(imported)], imported),
        "train-tcn": (["train-tcn", "--data", str(data), "--out", str(tcn), "--resume", "--steps", "6"], tcn),
        "pretrain": (["pretrain", "--method", "rotation", "--data", str(data), "--out", str(pretrain), "--resume", "--steps", "4"], pretrain),
        "evaluate": (["evaluate", "--baseline", "pixels", "--data", str(data), "--out", str(ev), "--overwrite", "--demo", str(data / "ep00000")], ev),
        "train-rl": (["train-rl", "--out", str(rl), "--resume", "--steps", "96"], rl),
        "replay": (["replay", "--run", str(rl), "--episodes", "1", "--out", str(rep), "--overwrite", "--policy", "random"], rep),
    }


@pytest.fixture(scope="module")
def outputs(made, tmp_path_factory):
    return commands(made, tmp_path_factory.mktemp("outputs"))


@pytest.mark.parametrize("command", ["record", "import-videos", "train-tcn", "pretrain", "evaluate", "train-rl", "replay"])
def test_a_command_into_an_output_another_process_holds_is_refused_naming_it(outputs, holder, capsys, command):
    argv, folder = outputs[command]
    held = holder(folder)
    before = snapshot(folder)
    line = fails_cleanly(capsys, argv, folder.name, "in use by `", f"process {held.pid}")
    assert str(folder) in line.split("`")[1]  # the holder's command line
    nothing_lost({k: v for k, v in before.items() if LOCK not in k})


@pytest.mark.parametrize("command", ["train-tcn", "train-rl", "evaluate"])
def test_a_new_output_another_process_holds_is_refused(made, tmp_path, holder, capsys, command):
    out = tmp_path / "new"
    held = holder(out)
    data = made / "data"
    argv = {"train-tcn": ["train-tcn", "--data", str(data), "--out", str(out), *TCN],
            "train-rl": ["train-rl", "--out", str(out), "--reward", "env", "--steps", "32", "--n-envs", "1", *RL],
            "evaluate": ["evaluate", "--baseline", "pixels", "--data", str(data), "--out", str(out), "--demo", str(data / "ep00000")]}[command]
    fails_cleanly(capsys, argv, f"process {held.pid}")
    assert sorted(p.name for p in out.iterdir()) == [LOCK]


def test_the_pipeline_refuses_an_output_another_process_holds(tmp_path, holder, capsys):
    out = tmp_path / "pipe"
    held = holder(out)
    fails_cleanly(capsys, ["pipeline", "--out", str(out), "--config", "smoke"], f"process {held.pid}")


def test_the_lock_of_a_process_that_died_is_taken_over(made, tmp_path, capsys):
    run = copy(made / "tcn", tmp_path / "tcn")
    (run / LOCK).write_text(json.dumps({"command": "tcn-robot train-tcn (killed)", "pid": 999999999, "host": "x", "since": "then"}))
    assert main(["train-tcn", "--data", str(made / "data"), "--out", str(run), "--resume", "--steps", "6"]) == 0
    assert json.loads((run / "metrics.json").read_text())["steps"] == 6


def test_a_lock_held_through_a_symlink_is_the_same_lock(made, tmp_path, holder, capsys):
    run = copy(made / "tcn", tmp_path / "tcn")
    link = tmp_path / "link"
    link.symlink_to(run)
    held = holder(run)
    fails_cleanly(capsys, ["train-tcn", "--data", str(made / "data"), "--out", str(link), "--resume", "--steps", "6"], f"process {held.pid}")


def test_a_second_recording_of_the_same_shard_is_refused_and_another_shard_runs(tmp_path, holder, capsys):
    data = tmp_path / "data"
    args = ["record", "--out", str(data), "--episodes", "2", "--views", "2", "--image-size", "32", "env.episode_steps=10",
            "env.num_particles=10"]
    assert main([*args, "--shard", "1/2"]) == 0  # the dataset exists and holds shard 1's episode
    held = holder(data, (0, 2))
    fails_cleanly(capsys, [*args, "--shard", "0/2"], "shard 0/2", f"process {held.pid}")
    fails_cleanly(capsys, args, "in use by", f"process {held.pid}")  # an unsharded recording needs the whole folder
    assert main([*args, "--shard", "1/2"]) == 0  # the other shard may run beside it


# ----------------------------------------------------------------- resolved paths
def test_an_output_that_resolves_into_the_dataset_is_refused(made, tmp_path, capsys):
    data = copy(made / "data", tmp_path / "data")
    before = snapshot(data)
    link = tmp_path / "looks_elsewhere"
    link.symlink_to(data)
    fails_cleanly(capsys, ["train-tcn", "--data", str(data), "--out", str(link / "run"), *TCN], "record")
    fails_cleanly(capsys, ["train-tcn", "--data", str(data), "--out", str(tmp_path / "x" / ".." / "data" / "run"), *TCN], "record")
    fails_cleanly(capsys, ["evaluate", "--baseline", "pixels", "--data", str(data), "--out", str(link)], "record")
    (tmp_path / "into").symlink_to(data / "ep00000")
    fails_cleanly(capsys, ["evaluate", "--baseline", "pixels", "--data", str(data), "--out", str(tmp_path / "into")])
    nothing_lost(before)


def test_an_output_beside_the_dataset_spelled_through_it_is_accepted(made, tmp_path):
    data = copy(made / "data", tmp_path / "data")
    assert main(["train-tcn", "--data", str(data), "--out", str(data / ".." / "run"), "--steps", "2", *TCN]) == 0
    assert (tmp_path / "run" / "metrics.json").is_file()


@pytest.mark.parametrize("flag", ["--demo", "--checkpoint"])
def test_an_output_that_holds_an_input_is_refused(made, tmp_path, capsys, flag):
    home = tmp_path / "home"
    home.mkdir()
    demo = copy(made / "data" / "ep00000", home / "demo")
    ckpt = home / "enc.pt"
    ckpt.write_bytes((made / "tcn/checkpoints/last.pt").read_bytes())
    before = snapshot(home)
    given = ["--demo", str(demo), "--baseline", "pixels"] if flag == "--demo" else ["--checkpoint", str(ckpt)]
    fails_cleanly(capsys, ["evaluate", *given, "--data", str(made / "data"), "--out", str(home / "demo" if flag == "--demo" else ckpt.parent / "sub"), "--overwrite"])
    nothing_lost(before)


# ----------------------------------------------------------------- two real commands at once
def test_two_trainings_started_into_one_folder_leave_one_runs_output(made, tmp_path):
    out = tmp_path / "run"
    argv = [SCRIPT, "train-tcn", "--data", str(made / "data"), "--out", str(out), "--steps", "40", *TCN]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], [r[1][-800:] for r in results]
    loser = next(r for p, r in zip(procs, results) if p.returncode == 2)
    lines = error_lines(loser[1])
    assert len(lines) == 1 and ("in use by" in lines[0] or "already holds" in lines[0]), loser[1]
    winner = next(p for p in procs if p.returncode == 0)
    last = torch.load(out / "checkpoints/last.pt", weights_only=True)
    assert last["step"] == 40 and json.loads((out / "metrics.json").read_text())["steps"] == 40
    assert winner.pid and "Traceback" not in loser[1]
