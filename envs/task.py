"""The pouring world: table, bowl, cup of particles, a holder (robot or hand), cameras, and the
ground-truth measurements every later stage relies on (particle fractions, the TCN paper's five
pouring attributes, the dense reward).
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from .behaviours import BEHAVIOURS, RECEPTACLES, SCENES, Behaviour
from .cameras import Camera, drift_path, projection_matrix, sample_camera
from .config import PourConfig
from .grasp import cup_angle_from_vertical, cup_tilt, quat_to_matrix
from .hand import SKIN_TONES, Hand
from .robot import PALM_THICKNESS, Robot
from .sim import Simulator

ROBOT_BASE = (0.05, -0.62, 0.0)
TABLE_HALF = (0.6, 0.6, 0.02)
TABLE_CENTER = (0.1, -0.2)
HOLDERS = ("robot", "human")  # the simulated bodies that hold the cup
ATTRIBUTES = ("contact", "distance", "liquid_flowing", "has_liquid", "container_angle")


@dataclass
class Measurement:
    """Ground truth at one instant. Fractions are of all particles; attributes follow the TCN
    paper's pouring labels (``container_angle`` is a bin index 0..3)."""

    in_cup: float
    in_bowl: float
    in_jar: float  # 0 in a scene without a jar
    spilled: float
    in_air: float
    contact: bool
    distance: bool
    liquid_flowing: bool
    has_liquid: bool
    container_angle: int
    cup_center: np.ndarray  # (3,) grasp centre of the cup
    cup_quat: np.ndarray  # (4,) xyzw
    tilt: float  # signed, radians, positive toward the bowl

    def info(self) -> dict:
        """The ``info`` entries of this measurement (plain Python scalars)."""
        return {
            "fraction_in_bowl": self.in_bowl,
            "fraction_in_jar": self.in_jar,
            "fraction_in_cup": self.in_cup,
            "fraction_spilled": self.spilled,
            "fraction_in_air": self.in_air,
            **{a: getattr(self, a) for a in ATTRIBUTES},
        }

    @property
    def fractions(self) -> dict[str, float]:
        """Where the particles are, as ``Behaviour.score`` reads it."""
        return {"bowl": self.in_bowl, "jar": self.in_jar, "cup": self.in_cup}


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float, float]:
    return (*colorsys.hsv_to_rgb(h % 1.0, s, v), 1.0)


class PouringWorld:
    """Builds the scene for one episode and measures it.

    Args:
        cfg: the world configuration.
        embodiment: ``"robot"`` (KUKA iiwa holding the cup from the start) or ``"human"``
            (a floating hand that starts away from the cup resting on the table).
    """

    def __init__(self, cfg: PourConfig, embodiment: str = "robot") -> None:
        if embodiment not in HOLDERS:
            raise ValueError(f"embodiment must be one of {HOLDERS}, got {embodiment!r}")
        self.cfg = cfg
        self.embodiment = embodiment
        self.sim = Simulator(1.0 / cfg.physics_hz, cfg.solver_iterations, cfg.renderer)
        self.cup_outer = cfg.cup_radius + cfg.cup_wall
        self.holder: Robot | Hand | None = None
        self.cameras: list[Camera] = []
        self.bowl_pos = np.zeros(3)
        self.receptacles: dict[str, tuple[np.ndarray, float, float]] = {}  # name -> (position, radius, height)
        self.behaviour: Behaviour = BEHAVIOURS[cfg.behaviour]  # what reward() asks for; the env may set it per episode
        self.drift: list[np.ndarray] | None = None  # per camera, (frames, 6) hand-held offsets (cameras.drift_path)
        self.frame_index = 0

    # ----------------------------------------------------------------- build
    def build(self, rng: np.random.Generator) -> None:
        """Rebuild the world from nothing with placements and colours drawn from ``rng``."""
        cfg = self.cfg
        if self.sim.client is None:  # closed: reopen, as gymnasium envs may be reset after close()
            self.sim = Simulator(1.0 / cfg.physics_hz, cfg.solver_iterations, cfg.renderer)
        sim = self.sim
        sim.reset()
        colors = self._draw_colors(rng)
        self.light = colors.pop("light")
        tx, ty = TABLE_CENTER
        table = sim.add_boxes("table", [(TABLE_HALF, (0, 0, 0), (0, 0, 0, 1))], (tx, ty, -TABLE_HALF[2]), 0.0, colors["table"])
        walls = [((4, 4, 0.02), (0, 0, -0.8), (0, 0, 0, 1))]
        walls += [((0.02, 4, 2), (s * 3, 0, 0.8), (0, 0, 0, 1)) for s in (-1, 1)]
        walls += [((4, 0.02, 2), (0, s * 3, 0.8), (0, 0, 0, 1)) for s in (-1, 1)]
        sim.add_boxes("room", walls, (0, 0, 0), 0.0, colors["background"], collide=False)
        self._build_receptacles(rng, colors)
        cup_origin = np.array([*cfg.cup_start, cfg.cup_wall])
        self.cup = sim.add_container("cup", cfg.cup_radius, cfg.cup_height, cfg.cup_wall, 12, cup_origin, cfg.cup_mass, colors["cup"])
        sim.client.changeDynamics(self.cup, -1, lateralFriction=0.8)
        self.particles = sim.add_spheres(
            "particle", cfg.particle_radius, cfg.particle_mass, cup_origin + self._particle_grid(), colors["particles"]
        )
        for b in self.particles:
            sim.client.changeDynamics(
                b, -1, lateralFriction=cfg.particle_friction, rollingFriction=0.0, restitution=0.1,
                ccdSweptSphereRadius=0.9 * cfg.particle_radius if cfg.ccd else 0.0,
            )
        start_center = self.cup_center_from_origin(cup_origin, 0.0)
        # drawn for both embodiments, so that a robot world and a hand world built from one seed
        # get the same cameras (the paired recordings rely on it)
        hand_offset = np.array([rng.uniform(-0.15, 0.05), rng.uniform(-0.3, -0.2), rng.uniform(0.1, 0.2)])
        if self.embodiment == "robot":
            standoff = PALM_THICKNESS + self.cup_outer + 0.002
            self.holder = Robot(sim, ROBOT_BASE, standoff, self.cup_outer, cfg.substeps)
            self.holder.place(start_center, 0.0)
            self.holder.grasp(self.cup, cfg.cup_height)
        else:
            self.hand_start = start_center + hand_offset
            self.holder = Hand(sim, self.hand_start, 0.0, self.cup_outer, colors["skin"][:3], cfg.substeps)
        for _ in range(cfg.settle_substeps):
            sim.step()
        if (cfg.table_friction, cfg.table_rolling_friction) != (0.5, 0.0):  # PyBullet's defaults, left untouched
            # after the settling, so that the scene starts as it does on the default table
            sim.client.changeDynamics(table, -1, lateralFriction=cfg.table_friction,
                                      rollingFriction=cfg.table_rolling_friction, spinningFriction=cfg.table_rolling_friction)
        self.cameras = [sample_camera(rng, r) for r in cfg.cameras]
        self.jitter_seed = int(rng.integers(2**31))
        self.drift = None
        if cfg.drift_deg or cfg.drift_m:  # from the episode's jitter seed: the scene's draws stay as they are
            self.drift = [drift_path(np.random.default_rng([self.jitter_seed, v, 1]), cfg.episode_steps + 1, cfg.drift_deg,
                                     cfg.drift_m, cfg.drift_limit_deg, cfg.drift_limit_m) for v in range(len(self.cameras))]
        self.frame_index = 0

    def _build_receptacles(self, rng: np.random.Generator, colors: dict) -> None:
        """The bowl (and in ``bowl_jar`` the jar, on the side opposite the bowl, the side drawn here or ``bowl_side``)."""
        cfg, sim = self.cfg, self.sim
        size = {"bowl": (cfg.bowl_radius, cfg.bowl_height, 16), "jar": (cfg.jar_radius, cfg.jar_height, 14)}
        if cfg.scene == "bowl":
            places = {"bowl": (rng.uniform(*cfg.bowl_x_range), rng.uniform(*cfg.bowl_y_range))}
        else:
            side = 1.0 if rng.uniform() < 0.5 else -1.0
            side = float(cfg.bowl_side or side)  # drawn even when fixed, so that the scene's other draws stay as they are
            places = {name: (rng.uniform(*cfg.bowl_x_range), s * rng.uniform(*cfg.receptacle_y))
                      for name, s in zip(SCENES[cfg.scene], (side, -side))}
        self.receptacles = {}
        for name, (x, y) in places.items():
            radius, height, segments = size[name]
            pos = np.array([x, y, cfg.cup_wall])
            sim.add_container(name, radius, height, 0.01, segments, pos, 0.0, colors[name])
            self.receptacles[name] = (pos, radius, height)
        self.bowl_pos = self.receptacles["bowl"][0]

    def _particle_grid(self) -> np.ndarray:
        """Start positions (N, 3) in the cup frame: layers of a centre and a ring of 7, staggered."""
        cfg = self.cfg
        r = cfg.particle_radius
        ring = min(cfg.cup_radius - r - 0.001, 2.4 * r)
        pts, layer = [], 0
        while len(pts) < cfg.num_particles:
            z = r + 0.001 + layer * (2 * r + 0.0005)
            pts.append((0.0, 0.0, z))
            for k in range(7):
                a = 2 * math.pi * k / 7 + layer * math.pi / 7
                pts.append((ring * math.cos(a), ring * math.sin(a), z))
            layer += 1
        return np.array(pts[: cfg.num_particles])

    def _draw_colors(self, rng: np.random.Generator) -> dict:
        """Colours and light; the receptacles' colours come from one distribution (or are equal), so
        that a receptacle is known by its shape, never by its colour."""
        if not self.cfg.randomize:
            return {
                "table": (0.55, 0.4, 0.28, 1), "background": (0.82, 0.84, 0.88, 1), "bowl": (0.2, 0.4, 0.8, 1),
                "jar": (0.2, 0.4, 0.8, 1), "cup": (0.92, 0.92, 0.92, 1), "particles": (0.9, 0.35, 0.1, 1),
                "skin": (*SKIN_TONES[0], 1), "light": (0.4, -0.6, 1.0),
            }
        u = rng.uniform
        light = np.array([u(-1, 1), u(-1, 1), u(0.6, 1.5)])
        colors = {
            "table": _hsv(u(0.0, 1.0), u(0.1, 0.5), u(0.35, 0.75)),
            "background": _hsv(u(0.0, 1.0), u(0.0, 0.3), u(0.6, 0.95)),
            "bowl": _hsv(u(0.0, 1.0), u(0.4, 0.9), u(0.4, 0.9)),
            "cup": _hsv(u(0.0, 1.0), u(0.0, 0.25), u(0.8, 1.0)),
            "particles": _hsv(u(0.0, 1.0), u(0.7, 1.0), u(0.6, 1.0)),
            "skin": (*SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], 1),
            "light": tuple(light / np.linalg.norm(light)),
        }
        if "jar" in SCENES[self.cfg.scene]:  # drawn last, so that the single-bowl scene's draws stay as they were
            colors["jar"] = _hsv(u(0.0, 1.0), u(0.4, 0.9), u(0.4, 0.9))
        return colors

    # ----------------------------------------------------------------- geometry
    def cup_center_from_origin(self, origin: np.ndarray, tilt: float) -> np.ndarray:
        """Grasp centre of a cup whose floor centre is ``origin`` at ``tilt``."""
        s, c = math.sin(tilt), math.cos(tilt)
        h = self.cfg.cup_height / 2
        return np.asarray(origin) + h * np.array([s, 0.0, c])

    def cup_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Cup floor-centre position (3,) and quaternion (4,)."""
        return self.sim.pose(self.cup)

    @property
    def rest_height(self) -> float:
        """Height of the grasp centre when the cup stands on the table."""
        return self.cfg.cup_wall + self.cfg.cup_height / 2

    # ----------------------------------------------------------------- dynamics
    def control_step(self) -> None:
        """Advance one control period: the holder's substep targets, then one physics step each."""
        for k in range(1, self.cfg.substeps + 1):
            self.holder.substep(k)
            self.sim.step()
        self.frame_index += 1

    # ----------------------------------------------------------------- measuring
    def particle_positions(self) -> np.ndarray:
        return self.sim.positions(self.particles)

    def cup_local(self, points: np.ndarray) -> np.ndarray:
        """``points`` (N, 3) in the cup frame (origin at the inner floor centre, z up the cup)."""
        pos, quat = self.cup_pose()
        return (points - pos) @ quat_to_matrix(quat)

    def measure(self) -> Measurement:
        cfg, sim = self.cfg, self.sim
        pts = self.particle_positions()
        n = len(pts)
        local = self.cup_local(pts)
        r_local = np.hypot(local[:, 0], local[:, 1])
        in_cup = (r_local <= cfg.cup_radius) & (local[:, 2] >= -cfg.particle_radius) & (local[:, 2] <= cfg.cup_height)
        inside = {name: self._inside(pts, name) & ~in_cup for name in RECEPTACLES}
        in_bowl, in_jar = inside["bowl"], inside["jar"]
        spilled = ~in_cup & ~in_bowl & ~in_jar & (pts[:, 2] < cfg.bowl_height)
        in_air = ~in_cup & ~in_bowl & ~in_jar & ~spilled
        speed = np.array([np.linalg.norm(sim.client.getBaseVelocity(b)[0]) for b in self.particles])
        pos, quat = self.cup_pose()
        tilt = cup_tilt(quat)
        center = pos + quat_to_matrix(quat) @ np.array([0.0, 0.0, cfg.cup_height / 2])
        angle = math.degrees(cup_angle_from_vertical(quat))
        frac_cup = float(in_cup.sum()) / n
        return Measurement(
            in_cup=frac_cup,
            in_bowl=float(in_bowl.sum()) / n,
            in_jar=float(in_jar.sum()) / n,
            spilled=float(spilled.sum()) / n,
            in_air=float(in_air.sum()) / n,
            contact=bool(self.holder.holding),
            distance=any(np.hypot(*(center[:2] - pos[:2])) <= cfg.pour_distance for pos, _, _ in self.receptacles.values()),
            liquid_flowing=bool(np.any(in_air & (speed > 0.05))),
            has_liquid=frac_cup > cfg.has_liquid_fraction,
            container_angle=int(np.searchsorted(np.asarray(cfg.angle_bins_deg), angle, side="right")),
            cup_center=center,
            cup_quat=np.asarray(quat),
            tilt=tilt,
        )

    def _inside(self, pts: np.ndarray, name: str) -> np.ndarray:
        """Which of ``pts`` (N, 3) lie inside receptacle ``name`` (all False when the scene has none)."""
        if name not in self.receptacles:
            return np.zeros(len(pts), bool)
        pos, radius, height = self.receptacles[name]
        rel = pts - pos
        return (np.hypot(rel[:, 0], rel[:, 1]) <= radius) & (rel[:, 2] <= height) & (rel[:, 2] >= -0.02)

    def pour_point(self, receptacle: str = "bowl") -> np.ndarray:
        """Where the grasp centre sits for a pour: lip over the receptacle, above its rim."""
        pos, _, height = self.receptacles[receptacle]
        return pos + np.array([-0.05, 0.0, height + 0.1])

    def reward(self, m: Measurement) -> float:
        """Dense ground-truth reward per step for ``self.behaviour`` (goal fraction g into the
        receptacle R): ``g - |in R - g|`` (= ``min(in R, 2g - in R)``), minus ``spill_penalty`` x the fraction spilled or in another
        receptacle, plus ``shaping_weight`` x the fraction of the cup still to pour x a pull toward R's
        pour point that grows with the tilt once the cup is near: ``(a + a^2 tip) / 2`` with
        ``a = max(0, 1 - d / 0.3 m)`` and ``tip = clip(tilt / 90 deg, 0, 1)``. For the single bowl
        (g = 1): fraction in the bowl - spilled + shaping x fraction in the cup."""
        cfg, b = self.cfg, self.behaviour
        fractions = m.fractions
        elsewhere = sum(fractions[r] for r in self.receptacles if r != b.receptacle)
        d = float(np.linalg.norm(m.cup_center - self.pour_point(b.receptacle)))
        approach = max(0.0, 1.0 - d / 0.3)
        tip = min(max(m.tilt / (math.pi / 2), 0.0), 1.0)
        shaping = 0.5 * (approach + approach**2 * tip)
        to_pour = min(max((m.in_cup - (1.0 - b.goal)) / b.goal, 0.0), 1.0)
        target = fractions[b.receptacle]
        return (min(target, 2 * b.goal - target) - cfg.spill_penalty * (m.spilled + elsewhere)
                + cfg.shaping_weight * to_pour * shaping)

    # ----------------------------------------------------------------- rendering
    def camera_now(self, view: int) -> Camera:
        """Placement of camera ``view`` at the current frame, hand-held drift and jitter included.

        Both are functions of (episode, frame, view) only, so rendering a view twice at the same
        instant gives the same image.
        """
        cfg = self.cfg
        cam = self.cameras[view]
        if self.drift is not None:
            path = self.drift[view]
            cam = cam.moved(path[min(self.frame_index, len(path) - 1)])
        if cfg.jitter_deg or cfg.jitter_m:
            rng = np.random.default_rng([self.jitter_seed, self.frame_index, view])
            cam = cam.jittered(rng, cfg.jitter_deg, cfg.jitter_m)
        return cam

    def render(self, views: list[int] | None = None) -> list[np.ndarray]:
        """RGB frames (S, S, 3) uint8 of ``views`` (default all) at the current instant."""
        cfg = self.cfg
        views = range(len(self.cameras)) if views is None else views
        frames = []
        for v in views:
            cam = self.camera_now(v)
            frames.append(
                self.sim.render(cfg.image_size, cam.view_matrix(), projection_matrix(cam, cfg.near, cfg.far), self.light)
            )
        return frames

    def close(self) -> None:
        self.sim.close()
