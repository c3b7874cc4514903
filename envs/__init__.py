"""The PyBullet pouring world (installed as ``tcn_robot.envs``).

Importing this package registers every variant with gymnasium, in one loop:
``TCNPour-v0`` (state observations) and ``TCNPourPixels-v0`` (a Dict of per-camera images plus
the state). Any ``PourConfig`` field can be passed to ``gymnasium.make`` as a keyword.
"""
import gymnasium as gym

from .config import CameraRange, PourConfig, make_pour_config
from .demonstrators import DEMONSTRATORS, Step, run_demonstrator, run_paired
from .pour_env import PourEnv
from .task import ATTRIBUTES, EMBODIMENTS, Measurement, PouringWorld

ENV_IDS = {"TCNPour-v0": "state", "TCNPourPixels-v0": "pixels"}

for _id, _obs in ENV_IDS.items():
    if _id not in gym.registry:
        gym.register(id=_id, entry_point="tcn_robot.envs.pour_env:PourEnv", kwargs={"obs_type": _obs})

__all__ = [
    "ATTRIBUTES", "DEMONSTRATORS", "EMBODIMENTS", "ENV_IDS", "CameraRange", "Measurement", "PourConfig",
    "PourEnv", "PouringWorld", "Step", "make_pour_config", "run_demonstrator", "run_paired",
]
