"""The multi-view camera rig: placements drawn per episode, optional hand-held drift and jitter per frame.

A camera looks at ``target`` from ``distance`` along (``yaw``, ``pitch``), the convention of
``pybullet.computeViewMatrixFromYawPitchRoll`` (degrees, z up).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .bullet import p

from .config import CameraRange


@dataclass(frozen=True)
class Camera:
    """One camera placement (degrees and metres)."""

    yaw: float
    pitch: float
    distance: float
    fov: float
    target: tuple[float, float, float]

    def view_matrix(self) -> list[float]:
        return p.computeViewMatrixFromYawPitchRoll(list(self.target), self.distance, self.yaw, self.pitch, 0.0, 2)

    def position(self) -> np.ndarray:
        """Camera centre in world coordinates (3,)."""
        yaw, pitch = np.radians(self.yaw), np.radians(self.pitch)
        # pybullet: the eye sits at target + R(yaw, pitch) * (0, -distance, 0) with z up.
        offset = np.array([np.sin(yaw) * np.cos(pitch), -np.cos(yaw) * np.cos(pitch), -np.sin(pitch)])
        return np.asarray(self.target) + self.distance * offset

    def as_dict(self) -> dict:
        return asdict(self)

    def moved(self, offset: np.ndarray) -> Camera:
        """This camera moved by ``offset`` [yaw, pitch (degrees), distance, target x, y, z (metres)]; the
        pitch stays within +-89 degrees and the distance above 5 cm."""
        return Camera(self.yaw + float(offset[0]), float(np.clip(self.pitch + offset[1], -89.0, 89.0)),
                      max(0.05, self.distance + float(offset[2])), self.fov,
                      tuple(float(t + o) for t, o in zip(self.target, offset[3:6])))

    def jittered(self, rng: np.random.Generator, deg: float, metres: float) -> Camera:
        """This camera shaken by a hand: uniform noise of ``deg`` on yaw/pitch and ``metres`` on the target."""
        if deg == 0 and metres == 0:
            return self
        d = rng.uniform(-1, 1, size=5)
        target = tuple(float(t + metres * n) for t, n in zip(self.target, d[2:]))
        return Camera(self.yaw + deg * d[0], self.pitch + deg * d[1], self.distance, self.fov, target)


def sample_camera(rng: np.random.Generator, r: CameraRange) -> Camera:
    """Draw one placement uniformly inside ``r``."""
    target = tuple(float(t + rng.uniform(-r.target_noise, r.target_noise)) for t in r.target)
    return Camera(
        yaw=float(rng.uniform(*r.yaw)),
        pitch=float(rng.uniform(*r.pitch)),
        distance=float(rng.uniform(*r.distance)),
        fov=float(rng.uniform(*r.fov)),
        target=target,
    )


def drift_path(rng: np.random.Generator, frames: int, deg: float, metres: float, limit_deg: float,
               limit_m: float, momentum: float = 0.9) -> np.ndarray:
    """Offsets (frames, 6) [yaw, pitch, distance, target xyz] of a hand-held camera from its placement:
    0 at the first frame, then a walk whose velocity is a damped random process (AR(1) with
    ``momentum``, stationary step size ``deg`` / ``metres``), reflected at +-``limit_deg`` / ``limit_m``."""
    scale = np.array([deg, deg, metres, metres, metres, metres])
    limit = np.array([limit_deg, limit_deg, limit_m, limit_m, limit_m, limit_m])
    pos, vel = np.zeros(6), np.zeros(6)
    out = np.zeros((frames, 6))
    for t in range(1, frames):
        vel = momentum * vel + np.sqrt(1 - momentum**2) * scale * rng.standard_normal(6)
        pos = pos + vel
        over = np.abs(pos) > limit
        pos[over] = np.sign(pos[over]) * (2 * limit[over] - np.abs(pos[over]))  # reflect back inside
        pos = np.clip(pos, -limit, limit)
        vel[over] = -vel[over]
        out[t] = pos
    return out


def projection_matrix(camera: Camera, near: float, far: float) -> list[float]:
    return p.computeProjectionMatrixFOV(camera.fov, 1.0, near, far)
