"""A thin wrapper around one Bullet client: body registry, primitive builders, rendering.

One ``Simulator`` per environment (never the global pybullet client), so several envs live in one
process. ``reset()`` wipes the world (``resetSimulation``) so that a rebuilt world is bit-for-bit
deterministic; Bullet's ``saveState``/``restoreState`` is not, with many spheres in contact.
"""
from __future__ import annotations

import math
import pkgutil
from collections.abc import Sequence

import numpy as np

from .bullet import connect, p

Color = Sequence[float]


class Simulator:
    """Bullet in DIRECT mode at a fixed time step, with named bodies.

    Args:
        timestep: physics step in seconds (1/240 by default in the task).
        solver_iterations: constraint solver iterations per step.
        renderer: ``"tiny"`` (TinyRenderer, CPU) or ``"egl"`` (OpenGL through the EGL plugin).
    """

    def __init__(self, timestep: float, solver_iterations: int, renderer: str = "tiny") -> None:
        self.timestep = timestep
        self.solver_iterations = solver_iterations
        self.client = connect()
        self._egl_plugin = None
        if renderer == "egl":
            loader = pkgutil.get_loader("eglRenderer")
            if loader is None:
                raise RuntimeError("renderer='egl' asked for, but pybullet's eglRenderer plugin is not installed")
            self._egl_plugin = self.client.loadPlugin(loader.get_filename(), "_eglRendererPlugin")
            if self._egl_plugin < 0:
                raise RuntimeError("renderer='egl' asked for, but the EGL plugin failed to load (no EGL device?)")
        self._renderer = p.ER_BULLET_HARDWARE_OPENGL if renderer == "egl" else p.ER_TINY_RENDERER
        self.bodies: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        """Remove every body and restore gravity and solver settings."""
        self.client.resetSimulation()
        self.client.setGravity(0, 0, -9.81)
        self.client.setPhysicsEngineParameter(
            fixedTimeStep=self.timestep,
            numSolverIterations=self.solver_iterations,
            deterministicOverlappingPairs=1,
            enableConeFriction=0,
        )
        self.bodies = {}

    def step(self) -> None:
        """Advance physics by one time step."""
        self.client.stepSimulation()

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client = None

    # ----------------------------------------------------------------- builders
    def add_boxes(
        self,
        name: str,
        boxes: Sequence[tuple[Sequence[float], Sequence[float], Sequence[float]]],
        position: Sequence[float],
        mass: float,
        color: Color,
        orientation: Sequence[float] = (0, 0, 0, 1),
        collide: bool = True,
    ) -> int:
        """One rigid body made of boxes, each ``(half_extents, position, quaternion)`` in the body frame."""
        ext = [list(b[0]) for b in boxes]
        pos = [list(b[1]) for b in boxes]
        orn = [list(b[2]) for b in boxes]
        n = len(boxes)
        col = -1
        if collide:
            col = self.client.createCollisionShapeArray(
                [p.GEOM_BOX] * n, halfExtents=ext, collisionFramePositions=pos, collisionFrameOrientations=orn
            )
        # createVisualShapeArray crashes when given rgbaColors: colour the body afterwards.
        vis = self.client.createVisualShapeArray(
            [p.GEOM_BOX] * n, halfExtents=ext, visualFramePositions=pos, visualFrameOrientations=orn
        )
        body = self.client.createMultiBody(mass, col, vis, list(position), list(orientation))
        self.client.changeVisualShape(body, -1, rgbaColor=list(color))
        self.bodies[name] = body
        return body

    def add_container(
        self,
        name: str,
        radius: float,
        height: float,
        wall: float,
        segments: int,
        position: Sequence[float],
        mass: float,
        color: Color,
    ) -> int:
        """An open cylinder of ``segments`` wall boxes on a square floor; the frame origin is the
        centre of the inner floor (so the inside spans ``z in [0, height]``, ``r < radius``)."""
        half_seg = radius * math.tan(math.pi / segments) + wall / 2
        boxes = []
        for i in range(segments):
            a = 2 * math.pi * i / segments
            r = radius + wall / 2
            boxes.append(
                ((wall / 2, half_seg, height / 2), (r * math.cos(a), r * math.sin(a), height / 2), p.getQuaternionFromEuler((0, 0, a)))
            )
        boxes.append(((radius + wall, radius + wall, wall / 2), (0, 0, -wall / 2), (0, 0, 0, 1)))
        return self.add_boxes(name, boxes, position, mass, color)

    def add_spheres(
        self, name: str, radius: float, mass: float, positions: np.ndarray, color: Color
    ) -> list[int]:
        """Many identical spheres at ``positions`` (N, 3), created in one batch."""
        col = self.client.createCollisionShape(p.GEOM_SPHERE, radius=radius)
        vis = self.client.createVisualShape(p.GEOM_SPHERE, radius=radius, rgbaColor=list(color))
        ids = self.client.createMultiBody(
            mass, col, vis, basePosition=[0, 0, 0], batchPositions=[list(map(float, x)) for x in positions]
        )
        ids = list(ids) if isinstance(ids, (tuple, list)) else [ids]
        for i, body in enumerate(ids):
            self.bodies[f"{name}{i}"] = body
        return ids

    # ----------------------------------------------------------------- queries
    def positions(self, bodies: Sequence[int]) -> np.ndarray:
        """Base positions of ``bodies`` as an (N, 3) float64 array."""
        return np.array([self.client.getBasePositionAndOrientation(b)[0] for b in bodies], dtype=np.float64)

    def pose(self, body: int) -> tuple[np.ndarray, np.ndarray]:
        """Base position (3,) and quaternion xyzw (4,) of ``body``."""
        pos, orn = self.client.getBasePositionAndOrientation(body)
        return np.asarray(pos), np.asarray(orn)

    # ----------------------------------------------------------------- rendering
    def render(
        self,
        size: int,
        view_matrix: Sequence[float],
        projection_matrix: Sequence[float],
        light_direction: Sequence[float],
    ) -> np.ndarray:
        """One RGB image (size, size, 3) uint8, without shadows or segmentation."""
        _, _, rgba, _, _ = self.client.getCameraImage(
            size,
            size,
            viewMatrix=view_matrix,
            projectionMatrix=projection_matrix,
            renderer=self._renderer,
            shadow=0,
            lightDirection=list(light_direction),
            flags=p.ER_NO_SEGMENTATION_MASK,
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[:, :, :3].copy()
