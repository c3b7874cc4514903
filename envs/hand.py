"""The human proxy: a floating, skin-coloured hand (palm box, finger capsules) for demonstrations.

It is visibly unlike the robot, reaches for the same cup, closes its fingers around it, and holds
it rigidly while grasped. It is driven like a motion-capture hand: a world constraint pulls the
palm to the commanded pose. It never collides with anything; ``contact`` is the grasp itself.
"""
from __future__ import annotations

import math

import numpy as np

from .bullet import p
from .grasp import Grip, holder_pose
from .sim import Simulator

PALM_HALF = (0.045, 0.04, 0.012)  # along the cup axis, along the pour direction, toward the cup
FINGER_X = (-0.03, -0.01, 0.01, 0.03)
FINGER_RADIUS = 0.009
FINGER_LENGTH = 0.06
THUMB_LENGTH = 0.045
CLOSED = 1.45  # finger joint angle when wrapped round the cup (radians)
SKIN_TONES = ((0.96, 0.80, 0.69), (0.88, 0.67, 0.52), (0.76, 0.57, 0.42), (0.55, 0.38, 0.26), (0.40, 0.27, 0.18))


class Hand:
    """Palm with four fingers and a thumb on revolute joints; commanded like the robot, by the
    grasp centre (where a held cup's centre is) and tilt.

    Args:
        sim: the simulator to build into.
        center, tilt: the starting pose.
        cup_outer_radius: sets the palm's standoff from the cup centre.
        color: RGB skin tone.
        substeps: physics steps per control step, over which the pose is interpolated.
    """

    def __init__(self, sim: Simulator, center, tilt: float, cup_outer_radius: float, color, substeps: int) -> None:
        self.sim = sim
        self.substeps = substeps
        self.standoff = PALM_HALF[2] + cup_outer_radius + 0.002
        c = sim.client
        palm_col = c.createCollisionShape(p.GEOM_BOX, halfExtents=PALM_HALF)
        palm_vis = c.createVisualShape(p.GEOM_BOX, halfExtents=PALM_HALF, rgbaColor=[*color, 1])
        joints, shapes, visuals, axes = [], [], [], []
        along_y = p.getQuaternionFromEuler((-math.pi / 2, 0, 0))
        for x in FINGER_X:
            joints.append((x, PALM_HALF[1], PALM_HALF[2] / 2))
            shapes.append(c.createCollisionShape(p.GEOM_CAPSULE, radius=FINGER_RADIUS, height=FINGER_LENGTH,
                                                 collisionFramePosition=[0, FINGER_LENGTH / 2, 0], collisionFrameOrientation=along_y))
            visuals.append(c.createVisualShape(p.GEOM_CAPSULE, radius=FINGER_RADIUS, length=FINGER_LENGTH, rgbaColor=[*color, 1],
                                               visualFramePosition=[0, FINGER_LENGTH / 2, 0], visualFrameOrientation=along_y))
            axes.append((1, 0, 0))
        joints.append((0.0, -PALM_HALF[1], PALM_HALF[2] / 2))
        shapes.append(c.createCollisionShape(p.GEOM_CAPSULE, radius=FINGER_RADIUS * 1.15, height=THUMB_LENGTH,
                                             collisionFramePosition=[0, -THUMB_LENGTH / 2, 0], collisionFrameOrientation=along_y))
        visuals.append(c.createVisualShape(p.GEOM_CAPSULE, radius=FINGER_RADIUS * 1.15, length=THUMB_LENGTH, rgbaColor=[*color, 1],
                                           visualFramePosition=[0, -THUMB_LENGTH / 2, 0], visualFrameOrientation=along_y))
        axes.append((-1, 0, 0))
        n = len(joints)
        pos, orn = holder_pose(np.asarray(center), tilt, self.standoff)
        self.body = c.createMultiBody(
            0.3, palm_col, palm_vis, list(pos), list(orn),
            linkMasses=[0.01] * n, linkCollisionShapeIndices=shapes, linkVisualShapeIndices=visuals,
            linkPositions=joints, linkOrientations=[(0, 0, 0, 1)] * n,
            linkInertialFramePositions=[(0, 0, 0)] * n, linkInertialFrameOrientations=[(0, 0, 0, 1)] * n,
            linkParentIndices=[0] * n, linkJointTypes=[p.JOINT_REVOLUTE] * n, linkJointAxis=axes,
        )
        sim.bodies["hand"] = self.body
        for link in range(-1, n):
            c.setCollisionFilterGroupMask(self.body, link, 0, 0)
        self._mocap = c.createConstraint(self.body, -1, -1, -1, p.JOINT_FIXED, [0, 0, 0], [0, 0, 0], list(pos), childFrameOrientation=list(orn))
        c.changeConstraint(self._mocap, maxForce=500)
        self._from = (np.asarray(center, dtype=float), float(tilt))
        self._to = self._from
        self._grasp = None
        self._set_fingers(0.0)

    @property
    def holding(self) -> bool:
        return self._grasp is not None

    def command(self, center: np.ndarray, tilt: float) -> None:
        """Move the grasp centre to ``center`` and the tilt to ``tilt`` over the next control step."""
        self._from = self._to
        self._to = (np.asarray(center, dtype=float), float(tilt))

    def substep(self, k: int) -> None:
        a = k / self.substeps
        center = (1 - a) * self._from[0] + a * self._to[0]
        tilt = (1 - a) * self._from[1] + a * self._to[1]
        pos, orn = holder_pose(center, tilt, self.standoff)
        self.sim.client.changeConstraint(self._mocap, list(pos), jointChildFrameOrientation=list(orn), maxForce=500)
        if self._grasp is not None:
            self._grasp.follow(pos, orn)

    def grasp(self, cup: int, cup_height: float) -> None:
        """Close the fingers and hold ``cup`` at mid-height from now on."""
        self._set_fingers(CLOSED)
        self._grasp = Grip(self.sim.client, cup, self.standoff, cup_height)

    def release(self) -> None:
        """Let go of the cup and open the fingers."""
        if self._grasp is not None:
            self._grasp.remove()
            self._grasp = None
        self._set_fingers(0.0)

    def _set_fingers(self, angle: float) -> None:
        n = len(FINGER_X) + 1
        self.sim.client.setJointMotorControlArray(
            self.body, list(range(n)), p.POSITION_CONTROL, targetPositions=[angle] * n, forces=[2.0] * n
        )
