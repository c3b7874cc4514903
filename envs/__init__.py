"""The PyBullet pouring world (installed as ``tcn_robot.envs``).

Importing this package registers every variant with gymnasium, in one loop:
``TCNPour-v0`` (state observations) and ``TCNPourPixels-v0`` (a Dict of per-camera images plus
the state) for the single bowl, and ``TCNPourFamily-v0`` / ``TCNPourFamilyPixels-v0`` for the
scene of several pouring tasks (a bowl and a jar, four action axes; ``FAMILY``), where the keyword
``behaviour`` (``bowl``, ``jar``, ``half``) picks the task the env reward asks for. Any
``PourConfig`` field can be passed to ``gymnasium.make`` as a keyword. The
simulator modules load on first use of a name that needs them, so that reading a config does not
start pybullet.
"""
from importlib import import_module

import gymnasium as gym

from .config import DEMONSTRATORS, FAMILY, CameraRange, PourConfig, make_pour_config

ENV_IDS = {  # id -> keyword arguments of PourEnv
    "TCNPour-v0": {"obs_type": "state"},
    "TCNPourPixels-v0": {"obs_type": "pixels"},
    "TCNPourFamily-v0": {"obs_type": "state", **FAMILY},
    "TCNPourFamilyPixels-v0": {"obs_type": "pixels", **FAMILY},
}

for _id, _kwargs in ENV_IDS.items():
    if _id not in gym.registry:
        gym.register(id=_id, entry_point="tcn_robot.envs.pour_env:PourEnv", kwargs=_kwargs)

_LAZY = {
    "Step": "demonstrators", "run_demonstrator": "demonstrators", "run_paired": "demonstrators",
    "PourEnv": "pour_env", "ATTRIBUTES": "task", "HOLDERS": "task", "Measurement": "task", "PouringWorld": "task",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEMONSTRATORS", "FAMILY", "CameraRange", "ENV_IDS", "PourConfig", "make_pour_config", *_LAZY]
