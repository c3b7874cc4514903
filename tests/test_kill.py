"""The kill loop: record, train-tcn, train-rl (PPO and SAC) and the pipeline, each killed with SIGKILL
(every process of the command) at 20 random moments and started again the way a user would, until
it completes. Every run completes; train-tcn's final weights equal those of a run never killed, and
a recording decodes to the same frames as one never killed. Slow: about 10 minutes on 2 cores."""
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hostile import RL, SCRIPT, TCN
from tcn_robot.data.episodes import Dataset
from tcn_robot.io import TEMP_TAG

KILLS = 20
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([SCRIPT, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=ENV)


def timed(argv: list[str]) -> float:
    began = time.perf_counter()
    p = start(argv)
    err = p.communicate(timeout=900)[1]
    assert p.returncode == 0, err[-2000:]
    return time.perf_counter() - began


def kill_loop(next_argv, horizon: float, seed: int) -> list[int]:
    """Start the command (``next_argv()`` says how, from what is on disk), SIGKILL its process group at
    a random moment within ``horizon`` seconds, ``KILLS`` times; then run it to the end. Returns the
    exit codes of the runs that finished before their kill."""
    rng = np.random.default_rng(seed)
    finished = []
    for _ in range(KILLS):
        p = start(next_argv())
        try:
            p.wait(timeout=rng.uniform(0.0, horizon))
            finished.append(p.returncode)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        p.stderr.close()
    p = start(next_argv())
    err = p.communicate(timeout=900)[1]
    assert p.returncode == 0, err[-3000:]
    return finished


def no_temporaries(folder: Path) -> None:
    assert not list(folder.rglob(f"*{TEMP_TAG}*")), "temporaries left behind"


@pytest.mark.slow
def test_record_survives_20_kills_and_equals_an_uninterrupted_recording(tmp_path):
    args = ["--episodes", "40", "--views", "2", "--image-size", "32", "--workers", "2", "--demonstrator",
            "human=0.4,robot=0.4,random=0.2", "env.episode_steps=40", "env.num_particles=10"]
    horizon = timed(["record", "--out", str(tmp_path / "whole"), *args])
    finished = kill_loop(lambda: ["record", "--out", str(tmp_path / "killed"), *args], horizon, 0)
    assert all(code == 0 for code in finished)
    whole, killed = Dataset.open(tmp_path / "whole"), Dataset.open(tmp_path / "killed")
    assert [e.name for e in whole.episodes] == [e.name for e in killed.episodes] and len(killed) == 40
    for a, b in zip(whole.episodes, killed.episodes):
        assert all(np.array_equal(a.read_view(v), b.read_view(v)) for v in range(a.num_views))
    no_temporaries(tmp_path / "killed")


@pytest.mark.slow
def test_train_tcn_survives_20_kills_and_ends_with_the_uninterrupted_weights(made, tmp_path):
    args = ["--data", str(made / "data"), "--steps", "60", *TCN, "train.val_every=10", "train.checkpoint_minutes=0"]
    horizon = timed(["train-tcn", "--out", str(tmp_path / "whole"), *args])
    run = tmp_path / "killed"

    def argv():
        if (run / "checkpoints/last.pt").exists():
            return ["train-tcn", "--out", str(run), "--resume", *args]
        return ["train-tcn", "--out", str(run), *(["--overwrite"] if run.exists() else []), *args]

    kill_loop(argv, horizon, 1)
    whole = torch.load(tmp_path / "whole/checkpoints/last.pt", weights_only=True)
    killed = torch.load(run / "checkpoints/last.pt", weights_only=True)
    assert killed["step"] == whole["step"] == 60
    assert all(torch.equal(whole["model"][k], killed["model"][k]) for k in whole["model"])
    no_temporaries(run)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_train_rl_survives_20_kills_and_completes(made, tmp_path, algo):
    extra = ["--algo", "sac", "rl.sac.learning_starts=64", "rl.sac.batch_size=32", "rl.sac.net_arch=[32,32]"] if algo == "sac" else []
    args = ["--reward", "tcn", "--encoder", str(made / "tcn/checkpoints/last.pt"), "--demo", str(made / "data/ep00000"),
            "--steps", "640", "--n-envs", "2", *RL, *extra]
    horizon = timed(["train-rl", "--out", str(tmp_path / "whole"), *args])
    run = tmp_path / "killed"

    def argv():
        if (run / "checkpoints/last.zip").exists():
            return ["train-rl", "--out", str(run), "--resume", "--steps", "640"]
        return ["train-rl", "--out", str(run), *(["--overwrite"] if run.exists() else []), *args]

    kill_loop(argv, horizon, 2)
    import json

    assert json.loads((run / "metrics.json").read_text())["steps"] == 640
    no_temporaries(run)


@pytest.mark.slow
def test_the_pipeline_survives_20_kills_and_completes(tmp_path):
    horizon = timed(["pipeline", "--out", str(tmp_path / "whole"), "--config", "smoke"])
    kill_loop(lambda: ["pipeline", "--out", str(tmp_path / "killed"), "--config", "smoke"], horizon, 3)
    assert (tmp_path / "killed" / "report.md").is_file()
    no_temporaries(tmp_path / "killed")
