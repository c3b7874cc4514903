import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
# source folder -> its installed path inside the tcn_robot package (pyproject.toml's package-dir)
PACKAGED = {"tcn_robot": "", "envs": "envs", "configs": "configs"}


def packaged_sources() -> dict[str, Path]:
    """Every file the wheel must hold, by its path inside the installed package: each ``.py`` under
    tcn_robot/ and envs/, and each ``.py`` and ``.yaml`` under configs/."""
    files = {}
    for folder, inside in PACKAGED.items():
        for f in (ROOT / folder).rglob("*"):
            if f.suffix in (".py", ".yaml") and "__pycache__" not in f.parts:
                files[str(Path(inside) / f.relative_to(ROOT / folder))] = f
    return files


@pytest.fixture(scope="session")
def made(tmp_path_factory):
    """A dataset (4 episodes, 2 views), a TCN run on it and a PPO run on its reward: what the hostile
    probes start from (each copies what it changes)."""
    from hostile import RL, TCN

    from tcn_robot.cli import main
    from tcn_robot.data.record import record_dataset
    from tcn_robot.envs import make_pour_config

    root = tmp_path_factory.mktemp("made")
    data = root / "data"
    record_dataset(make_pour_config(episode_steps=20, num_particles=10), data, 4, 2, 32, 0, "human=0.5,robot=0.5")
    assert main(["train-tcn", "--data", str(data), "--out", str(root / "tcn"), "--steps", "4", *TCN]) == 0
    assert main(["train-rl", "--out", str(root / "rl"), "--reward", "tcn", "--encoder", str(root / "tcn/checkpoints/last.pt"),
                 "--demo", str(data / "ep00000"), "--steps", "64", "--n-envs", "1", *RL]) == 0
    return root


@pytest.fixture
def small_world():
    """Overrides that keep a world cheap: fewer particles, short episodes, small images."""
    return {"num_particles": 20, "episode_steps": 30, "image_size": 32}


@pytest.fixture(autouse=True)
def float32_training(monkeypatch):
    """In-process training runs in float32 on every machine, so that the tiny runs of the tests behave
    alike whether or not the CPU computes bf16 natively (tests/test_train.py checks the bf16 path)."""
    from tcn_robot.train import engine

    monkeypatch.setattr(engine, "bf16_autocast", lambda device: False)
