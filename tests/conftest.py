import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def small_world():
    """Overrides that keep a world cheap: fewer particles, short episodes, small images."""
    return {"num_particles": 20, "episode_steps": 30, "image_size": 32}
