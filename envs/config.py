"""Configuration of the pouring world: one dataclass, validated by OmegaConf.

Every field has a default that gives the packaged task; YAML files and ``key=value`` overrides
(see ``tcn_robot.config``) change them, and an unknown key is an error that names it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf

from .behaviours import SCENES, check_behaviour

DEMONSTRATORS = ("human", "robot", "random", "paired")  # paired: the human proxy and its robot twin, recorded together


@dataclass
class CameraRange:
    """Ranges from which one camera of the rig is drawn at every reset (degrees and metres).

    ``target`` is the point looked at; ``target_noise`` the half-width of a uniform offset on it.
    """

    yaw: tuple[float, float] = (165.0, 195.0)
    pitch: tuple[float, float] = (-35.0, -20.0)
    distance: tuple[float, float] = (0.5, 0.62)
    fov: tuple[float, float] = (45.0, 55.0)
    target: tuple[float, float, float] = (0.12, -0.02, 0.1)
    target_noise: float = 0.02


def spread_cameras(views: int) -> list[CameraRange]:
    """``views`` camera ranges spread evenly in yaw over the side of the table facing the robot
    (it stands at -y; yaw 180 looks along -y), each 30 degrees wide, pitch alternating high/low."""
    if views < 1:
        raise ValueError(f"a camera rig needs at least one view, got {views}")
    centers = [180.0] if views == 1 else [180.0 + 100.0 * (k / (views - 1) - 0.5) for k in range(views)]
    centers.sort(key=lambda c: abs(c - 180.0))  # view 0 (the agent view) faces the robot
    pitches = [(-35.0, -20.0), (-40.0, -25.0), (-30.0, -15.0)]
    return [CameraRange(yaw=(c - 15.0, c + 15.0), pitch=pitches[k % 3]) for k, c in enumerate(centers)]


def _default_cameras() -> list[CameraRange]:
    return spread_cameras(3)


@dataclass
class PourConfig:
    """The pouring world: geometry, particles, control, cameras, randomization, reward."""

    # Liquid: N small spheres.
    num_particles: int = 40
    particle_radius: float = 0.008
    particle_mass: float = 0.004
    particle_friction: float = 0.1
    # The table's friction; a contact's is the product of its two bodies' lateral frictions (rolling: the one body's
    # rolling x the other's lateral). PyBullet's defaults let spilled particles slide and roll off the table, out of
    # every camera's view: a spill then looks like an empty cup. 5.0 and 0.3 keep a spill where it lands.
    table_friction: float = 0.5
    table_rolling_friction: float = 0.0
    solver_iterations: int = 10
    ccd: bool = True
    # Cup (built from box primitives; inner radius, inner height, wall thickness in metres).
    cup_radius: float = 0.03
    cup_height: float = 0.09
    cup_wall: float = 0.008
    cup_mass: float = 0.15
    cup_start: tuple[float, float] = (0.0, 0.0)
    # Bowl: centre drawn uniformly in [x_range] x [y_range] at every reset.
    bowl_radius: float = 0.09
    bowl_height: float = 0.045
    bowl_x_range: tuple[float, float] = (0.22, 0.28)
    bowl_y_range: tuple[float, float] = (-0.02, 0.02)
    # Several pouring tasks in one scene (envs/behaviours.py): "bowl" is the single bowl above; "bowl_jar" adds a
    # jar (narrower, taller); each receptacle's x is drawn from bowl_x_range, |y| from receptacle_y, and which one
    # stands on the +y side is drawn at every reset, unless bowl_side fixes it (+1: the bowl on +y, -1: on -y; 0: drawn).
    # ``behaviour`` is what the env reward asks for (bowl, jar, half).
    scene: str = "bowl"
    behaviour: str = "bowl"
    bowl_side: int = 0
    jar_radius: float = 0.06
    jar_height: float = 0.09
    receptacle_y: tuple[float, float] = (0.1, 0.13)
    # Control: 20 Hz task-space control over 240 Hz physics.
    physics_hz: float = 240.0
    substeps: int = 12
    episode_steps: int = 100
    action_axes: tuple[str, ...] = ("x", "z", "tilt")
    max_delta_pos: float = 0.02
    max_delta_tilt: float = 0.15
    tilt_limits: tuple[float, float] = (-0.3, 2.4)
    x_limits: tuple[float, float] = (-0.12, 0.36)
    y_limits: tuple[float, float] = (-0.1, 0.1)
    z_max: float = 0.35
    settle_substeps: int = 60
    # Cameras.
    cameras: list[CameraRange] = field(default_factory=_default_cameras)
    agent_view: int = 0
    image_size: int = 64
    jitter_deg: float = 0.0
    jitter_m: float = 0.0
    # Hand-held cameras: every camera's placement wanders smoothly during an episode, a random walk whose velocity
    # is damped (cameras.drift_path) with typical steps of drift_deg (yaw, pitch) and drift_m (distance, target) per
    # control step, kept within +-drift_limit_deg / drift_limit_m of the placement drawn at reset.
    drift_deg: float = 0.0
    drift_m: float = 0.0
    drift_limit_deg: float = 15.0
    drift_limit_m: float = 0.08
    renderer: str = "tiny"  # "tiny" (TinyRenderer, CPU) or "egl" (OpenGL through EGL)
    views_in_info: bool = False  # put every view's frame in info["views"] (for replay videos: the last step's frames)
    near: float = 0.05
    far: float = 5.0
    # Seeded domain randomization of colours and light.
    randomize: bool = True
    # Task measurement and reward.
    pour_distance: float = 0.15
    has_liquid_fraction: float = 0.1
    angle_bins_deg: tuple[float, float, float] = (30.0, 60.0, 90.0)
    success_fraction: float = 0.8
    spill_penalty: float = 1.0
    shaping_weight: float = 0.3


# The scene of several pouring tasks (envs/behaviours.py): a bowl and a jar, sides drawn at every reset, and the
# y axis in the action space to reach either.
FAMILY = {"scene": "bowl_jar", "action_axes": ("x", "y", "z", "tilt"), "y_limits": (-0.2, 0.2), "table_friction": 5.0,
          "table_rolling_friction": 0.3}


def make_pour_config(config: PourConfig | dict[str, Any] | None = None, **overrides: Any) -> PourConfig:
    """Return a validated ``PourConfig`` from a config object or dict plus keyword overrides.

    Raises ``omegaconf.errors.ConfigKeyError`` naming the key when a key is unknown, and
    ``omegaconf.errors.ValidationError`` when a value has the wrong type.
    """
    base = OmegaConf.structured(PourConfig)
    parts = [base]
    if config is not None:
        parts.append(OmegaConf.structured(config) if isinstance(config, PourConfig) else OmegaConf.create(config))
    if overrides:
        parts.append(OmegaConf.create(overrides))
    cfg = OmegaConf.to_object(OmegaConf.merge(*parts))
    _check(cfg)
    return cfg


# Allowed values of every number, as (low, high) bounds (inclusive); generous, so that they stop nonsense
# (negative sizes, zero rates, values that overflow) rather than experiments.
POUR_RANGES = {
    "num_particles": (1, 2000), "particle_radius": (1e-4, 0.05), "particle_mass": (1e-6, 1.0), "particle_friction": (0.0, 10.0),
    "table_friction": (0.0, 100.0), "table_rolling_friction": (0.0, 10.0),
    "solver_iterations": (1, 1000), "cup_radius": (0.005, 0.2), "cup_height": (0.01, 0.5), "cup_wall": (0.001, 0.05),
    "cup_mass": (1e-3, 10.0), "bowl_radius": (0.01, 0.5), "bowl_height": (0.005, 0.5),
    "jar_radius": (0.01, 0.5), "jar_height": (0.005, 0.5), "receptacle_y": (0.0, 1.0), "physics_hz": (10.0, 10_000.0),
    "substeps": (1, 1000), "episode_steps": (1, 100_000), "max_delta_pos": (1e-4, 1.0), "max_delta_tilt": (1e-4, 3.2),
    "z_max": (0.01, 2.0), "settle_substeps": (0, 100_000), "agent_view": (0, 63), "image_size": (8, 1024),
    "jitter_deg": (0.0, 90.0), "jitter_m": (0.0, 1.0), "drift_deg": (0.0, 30.0), "drift_m": (0.0, 0.5),
    "drift_limit_deg": (0.0, 80.0), "drift_limit_m": (0.0, 1.0), "near": (1e-4, 10.0), "far": (0.01, 1e4), "pour_distance": (0.0, 10.0),
    "has_liquid_fraction": (0.0, 1.0), "success_fraction": (0.0, 1.0), "spill_penalty": (0.0, 1e6), "shaping_weight": (0.0, 1e6),
}
CAMERA_RANGES = {"yaw": (-720.0, 720.0), "pitch": (-89.9, 89.9), "distance": (0.01, 100.0), "fov": (1.0, 179.0),
                 "target": (-100.0, 100.0), "target_noise": (0.0, 10.0)}


def check_ranges(obj, ranges: dict[str, tuple[float, float]], prefix: str = "") -> None:
    """Raise ValueError naming the first field of ``obj`` (a dataclass) outside its ``(low, high)``
    bounds; tuple fields are checked element by element. NaN is outside every range."""
    for key, (low, high) in ranges.items():
        value = getattr(obj, key)
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if not low <= v <= high:
                raise ValueError(f"{prefix}{key} must be between {low:g} and {high:g}, got {value}")


def _check(cfg: PourConfig) -> None:
    check_ranges(cfg, POUR_RANGES)
    if cfg.scene not in SCENES:
        raise ValueError(f"scene must be one of {list(SCENES)}, got {cfg.scene!r}")
    check_behaviour(cfg.scene, cfg.behaviour)
    if cfg.bowl_side not in (-1, 0, 1):
        raise ValueError(f"bowl_side must be -1, 0 (drawn at every reset) or 1, got {cfg.bowl_side}")
    if cfg.bowl_side and cfg.scene == "bowl":
        raise ValueError("bowl_side places the bowl beside the jar; the scene 'bowl' has no jar (scene=bowl_jar)")
    for name in ("bowl_x_range", "bowl_y_range", "receptacle_y", "tilt_limits", "x_limits", "y_limits"):
        low, high = getattr(cfg, name)
        if not low <= high:
            raise ValueError(f"{name} must be (low, high) with low <= high, got {list(getattr(cfg, name))}")
    if list(cfg.angle_bins_deg) != sorted(cfg.angle_bins_deg):
        raise ValueError(f"angle_bins_deg must increase, got {list(cfg.angle_bins_deg)}")
    if not cfg.near < cfg.far:
        raise ValueError(f"near must be below far, got {cfg.near} and {cfg.far}")
    if not cfg.cameras:
        raise ValueError("cameras: the rig needs at least one camera")
    for k, cam in enumerate(cfg.cameras):
        check_ranges(cam, CAMERA_RANGES, f"cameras[{k}].")
    if not 0 <= cfg.agent_view < len(cfg.cameras):
        raise ValueError(f"agent_view={cfg.agent_view} but the rig has {len(cfg.cameras)} cameras")
    unknown = set(cfg.action_axes) - {"x", "y", "z", "tilt"}
    if unknown or not cfg.action_axes or len(set(cfg.action_axes)) != len(cfg.action_axes):
        raise ValueError(f"action_axes must be distinct names from x, y, z, tilt; got {list(cfg.action_axes)}")
    if cfg.renderer not in ("tiny", "egl"):
        raise ValueError(f"renderer must be 'tiny' or 'egl', got {cfg.renderer!r}")
