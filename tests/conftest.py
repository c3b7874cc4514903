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
