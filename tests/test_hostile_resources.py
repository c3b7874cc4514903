"""Hostile probes, class 4: resources that run out. A full disk, too few open files, too little
memory and a path that is not UTF-8 each give one line naming the path or resource and what the
command needed; no bus error, segfault or traceback; nothing half-written is left looking complete;
the next run, once space is freed, completes."""
import os
import resource
import subprocess
from pathlib import Path

import pytest

from hostile import RL, SCRIPT, TCN, copy, error_lines, fails_cleanly, fails_cleanly_in_process, nothing_lost, run_cli, snapshot
from tcn_robot.cli import main
from tcn_robot.data.episodes import Dataset
from tcn_robot.io import TEMP_TAG


@pytest.fixture
def small_disk(tmp_path):
    """``make(size)``: a file system of ``size`` (tmpfs) mounted under tmp_path; ``grow(path)`` gives it 64 MB."""
    mounts = []

    def make(size: str) -> Path:
        where = tmp_path / f"disk{len(mounts)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small file system here ({done.stderr.decode().strip()}): needs root")
        mounts.append(where)
        return where

    yield make
    for where in mounts:
        subprocess.run(["umount", "-l", str(where)], check=False)


def grow(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)


def no_temporaries(folder: Path) -> None:
    assert not [p for p in folder.rglob(f"*{TEMP_TAG}*")], "temporaries left behind"


def complete_or_absent(data: Path) -> None:
    """Every episode folder of a dataset that looks complete (its meta.json) opens and decodes whole."""
    for ep in data.iterdir():
        if (ep / "meta.json").is_file():
            from tcn_robot.data.episodes import load_episode

            e = load_episode(ep)
            for v in range(e.num_views):
                e.read_view(v)


RECORD = ["--episodes", "3", "--views", "2", "--image-size", "32", "--demonstrator", "human=0.5,robot=0.5",
          "env.episode_steps=20", "env.num_particles=10"]


# ----------------------------------------------------------------- a full disk, command by command
@pytest.mark.parametrize("size", ["12k", "40k", "60k"])
def test_record_into_a_full_disk_fails_in_one_line_and_completes_once_space_is_freed(small_disk, capsys, size):
    disk = small_disk(size)
    out = disk / "data"
    fails_cleanly(capsys, ["record", "--out", str(out), *RECORD], "no space left")
    complete_or_absent(out)
    grow(disk)
    assert main(["record", "--out", str(out), *RECORD]) == 0
    assert len(Dataset.open(out)) == 3
    no_temporaries(out)


@pytest.mark.parametrize("size", ["12k", "40k", "120k", "400k"])
def test_train_tcn_checkpoints_into_a_full_disk_fail_in_one_line_and_resume(made, small_disk, capsys, size):
    disk = small_disk(size)
    out = disk / "run"
    before = snapshot(made)
    argv = ["train-tcn", "--data", str(made / "data"), "--out", str(out), "--steps", "6", *TCN]
    fails_cleanly(capsys, argv, "no space left")
    grow(disk)
    resumed = main([*argv, "--resume"])
    if resumed == 2:  # stopped before it saved its config: the message says to start again
        assert "--overwrite" in capsys.readouterr().err
        resumed = main([*argv, "--overwrite"])
    assert resumed == 0
    no_temporaries(out)
    nothing_lost(before)


@pytest.mark.parametrize("size", ["8k", "150k"])
def test_a_frame_cache_on_a_full_disk_is_one_line_not_a_bus_error(made, small_disk, tmp_path, size):
    disk = small_disk(size)
    argv = ["train-tcn", "--data", str(made / "data"), "--out", str(tmp_path / "run"), "--cache-dir", str(disk / "cache"),
            "--steps", "2", *TCN]
    fails_cleanly_in_process(run_cli(argv), "train-tcn", "cache", "no space left", "needed")
    no_temporaries(disk)
    grow(disk)
    assert run_cli(argv).returncode == 0


@pytest.mark.parametrize("size", ["8k", "40k", "200k"])
def test_train_rl_into_a_full_disk_fails_in_one_line_and_resumes(made, small_disk, capsys, size):
    disk = small_disk(size)
    out = disk / "rl"
    argv = ["train-rl", "--out", str(out), "--reward", "tcn", "--encoder", str(made / "tcn/checkpoints/last.pt"),
            "--demo", str(made / "data/ep00000"), "--steps", "128", "--n-envs", "1", *RL]
    fails_cleanly(capsys, argv, "no space left")
    grow(disk)
    resumed = main([*argv, "--resume"])
    if resumed == 2:  # stopped before it saved its config: the message says to start again
        assert "--overwrite" in capsys.readouterr().err
        resumed = main([*argv, "--overwrite"])
    assert resumed == 0
    no_temporaries(out)


@pytest.mark.parametrize("command", ["evaluate", "replay", "embed", "import-videos"])
@pytest.mark.parametrize("room", ["none", "some"])
def test_every_other_writer_fails_in_one_line_on_a_full_disk(made, small_disk, capsys, tmp_path, command, room):
    some = {"evaluate": "100k", "replay": "100k", "embed": "16k", "import-videos": "40k"}
    disk = small_disk("8k" if room == "none" else some[command])
    if command == "import-videos":
        from test_hostile_names import source

        src = source(tmp_path / "src", ["a", "b", "c"])
    argv = {"evaluate": ["evaluate", "--checkpoint", str(made / "tcn/checkpoints/last.pt"), "--baseline", "pixels",
                         "--data", str(made / "data"), "--out", str(disk / "ev"), "--demo", str(made / "data/ep00000")],
            "replay": ["replay", "--run", str(made / "rl"), "--episodes", "2", "--out", str(disk / "rep")],
            "embed": ["embed", "--checkpoint", str(made / "tcn/checkpoints/last.pt"), "--data", str(made / "data"), "--out", str(disk / "e.npz")],
            "import-videos": ["import-videos", str(tmp_path / "src"), "--out", str(disk / "imported")]}[command]
    before = snapshot(made)
    fails_cleanly(capsys, argv, "no space left")
    no_temporaries(disk)
    if command == "import-videos":
        complete_or_absent(disk / "imported")
    nothing_lost(before)


@pytest.mark.parametrize("size", ["100k", pytest.param("3m", marks=pytest.mark.slow), pytest.param("8m", marks=pytest.mark.slow)])
def test_the_pipeline_on_a_full_disk_fails_in_one_line_and_completes_when_run_again(small_disk, capsys, size):
    disk = small_disk(size)
    fails_cleanly(capsys, ["pipeline", "--out", str(disk / "p"), "--config", "smoke"], "no space left")
    grow(disk)
    assert main(["pipeline", "--out", str(disk / "p"), "--config", "smoke"]) == 0
    assert (disk / "p" / "report.md").is_file()
    no_temporaries(disk / "p")


# ----------------------------------------------------------------- open files and memory
def limited(kind: int, value: int):
    return lambda: resource.setrlimit(kind, (value, value))


@pytest.mark.parametrize("command", ["train-tcn", "train-rl", "record", "evaluate"])
def test_too_few_open_files_is_one_line_naming_what_the_command_needs(made, tmp_path, command):
    argv = {"train-tcn": ["train-tcn", "--data", str(made / "data"), "--out", str(tmp_path / "r"), "--steps", "2", *TCN],
            "train-rl": ["train-rl", "--out", str(tmp_path / "r"), "--reward", "env", "--steps", "64", "--n-envs", "2", *RL],
            "record": ["record", "--out", str(tmp_path / "r"), "--workers", "2", *RECORD],
            "evaluate": ["evaluate", "--baseline", "pixels", "--data", str(made / "data"), "--out", str(tmp_path / "r")]}[command]
    result = run_cli(argv, preexec_fn=limited(resource.RLIMIT_NOFILE, 24))
    fails_cleanly_in_process(result, command, "too many open files", "may open 24", "need about")
    assert not (tmp_path / "r").exists()


def test_a_batch_that_does_not_fit_in_memory_is_one_line_naming_what_it_needed(made, tmp_path):
    argv = ["train-tcn", "--data", str(made / "data"), "--out", str(tmp_path / "r"), "--steps", "2", *TCN, "tcn.sequences_per_batch=3000"]
    result = run_cli(argv, preexec_fn=limited(resource.RLIMIT_AS, 3 * 2**30))
    fails_cleanly_in_process(result, "train-tcn", "out of memory", "it needed", "MB more")


def test_too_little_memory_to_start_is_one_line(made, tmp_path):
    argv = ["train-tcn", "--data", str(made / "data"), "--out", str(tmp_path / "r"), "--steps", "2", *TCN]
    result = run_cli(argv, preexec_fn=limited(resource.RLIMIT_AS, 600 * 2**20))
    fails_cleanly_in_process(result, "train-tcn", "out of memory")


# ----------------------------------------------------------------- paths that are not UTF-8
@pytest.mark.parametrize("command", ["record", "train-tcn", "evaluate", "import-videos", "replay", "pipeline"])
def test_an_output_path_that_is_not_utf8_is_one_line_not_a_crash(made, tmp_path, command):
    bad = os.fsencode(tmp_path) + b"/caf\xe9"
    argv = {"record": [b"record", b"--out", bad, *map(str.encode, RECORD)],
            "train-tcn": [b"train-tcn", b"--data", os.fsencode(made / "data"), b"--out", bad, *map(str.encode, TCN)],
            "evaluate": [b"evaluate", b"--baseline", b"pixels", b"--data", os.fsencode(made / "data"), b"--out", bad],
            "import-videos": [b"import-videos", os.fsencode(made / "data"), b"--out", bad],
            "replay": [b"replay", b"--run", os.fsencode(made / "rl"), b"--out", bad],
            "pipeline": [b"pipeline", b"--config", b"smoke", b"--out", bad]}[command]
    result = subprocess.run([os.fsencode(SCRIPT), *argv], capture_output=True, timeout=300)
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2 and "Traceback" not in err and "not valid UTF-8" in err, err[-1500:]
    assert len(error_lines(err)) == 1
    assert not os.path.exists(bad)


def test_a_dataset_path_that_is_not_utf8_is_one_line(made, tmp_path):
    bad = os.fsencode(tmp_path) + b"/donn\xe9es"
    copy(made / "data", Path(os.fsdecode(bad)))
    result = subprocess.run([os.fsencode(SCRIPT), b"train-tcn", b"--data", bad, b"--out", os.fsencode(tmp_path / "r"),
                             *map(str.encode, TCN)], capture_output=True, timeout=300)
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2 and "Traceback" not in err and "not valid UTF-8" in err, err[-1500:]
