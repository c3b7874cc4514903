"""Where a holder (robot flange or hand palm) sits relative to the cup it holds.

The cup frame has its origin at the centre of the inner floor, z along the cup axis. The cup is
tilted about the world y axis, top toward +x (the bowl), by ``tilt`` radians. A holder grips the
cup from the -y side; its frame has z pointing at the cup (world +y), x along the cup axis and
y along the cup's x axis, so a rotation about the holder's z axis is exactly the pouring tilt.
"""
from __future__ import annotations

import numpy as np

from .bullet import p

# Columns are the holder's axes expressed in the cup frame.
GRIP_FORCE = 200.0  # newtons; far above the weight of a full cup
R_CUP_HOLDER = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def tilt_rotation(tilt: float) -> np.ndarray:
    """Rotation (3, 3) of the cup about world y by ``tilt`` radians."""
    c, s = np.cos(tilt), np.sin(tilt)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def matrix_to_quat(m: np.ndarray) -> tuple[float, float, float, float]:
    """Rotation matrix (3, 3) to a pybullet quaternion (x, y, z, w)."""
    w = np.sqrt(max(0.0, 1.0 + m[0, 0] + m[1, 1] + m[2, 2])) / 2
    x = np.sqrt(max(0.0, 1.0 + m[0, 0] - m[1, 1] - m[2, 2])) / 2
    y = np.sqrt(max(0.0, 1.0 - m[0, 0] + m[1, 1] - m[2, 2])) / 2
    z = np.sqrt(max(0.0, 1.0 - m[0, 0] - m[1, 1] + m[2, 2])) / 2
    x = np.copysign(x, m[2, 1] - m[1, 2])
    y = np.copysign(y, m[0, 2] - m[2, 0])
    z = np.copysign(z, m[1, 0] - m[0, 1])
    q = np.array([x, y, z, w])
    return tuple(float(v) for v in q / np.linalg.norm(q))


def quat_to_matrix(q) -> np.ndarray:
    return np.asarray(p.getMatrixFromQuaternion(list(q))).reshape(3, 3)


def cup_quat(tilt: float) -> tuple[float, float, float, float]:
    return matrix_to_quat(tilt_rotation(tilt))


def holder_pose(center: np.ndarray, tilt: float, standoff: float) -> tuple[np.ndarray, tuple]:
    """Holder position and quaternion for a cup whose grasp centre is ``center`` (3,) at ``tilt``.

    ``standoff`` is the distance from the holder origin to the cup's grasp centre along holder z.
    """
    rot = tilt_rotation(tilt) @ R_CUP_HOLDER
    return np.asarray(center) - standoff * rot[:, 2], matrix_to_quat(rot)


def cup_tilt(quat) -> float:
    """Signed tilt of a cup with orientation ``quat``: angle of its axis from vertical, positive toward +x."""
    axis = quat_to_matrix(quat)[:, 2]
    return float(np.arctan2(axis[0], axis[2]))


def cup_angle_from_vertical(quat) -> float:
    """Unsigned angle (radians) between the cup axis and world up."""
    axis = quat_to_matrix(quat)[:, 2]
    return float(np.arccos(np.clip(axis[2], -1.0, 1.0)))




class Grip:
    """A rigid grasp of the cup: a world constraint that keeps the cup at the holder's grasp frame.

    The holder calls ``follow`` with its own pose before every physics step. (Bullet's fixed
    constraint between a multibody link and another body does not hold rotations about a rotated
    frame; a world constraint on the cup, the usual motion-capture idiom, does. The holder does
    not feel the cup's weight.)
    """

    def __init__(self, client, cup: int, standoff: float, cup_height: float) -> None:
        self.client = client
        self.standoff = standoff
        pos, orn = client.getBasePositionAndOrientation(cup)
        center = np.asarray(pos) + quat_to_matrix(orn) @ np.array([0.0, 0.0, cup_height / 2])
        self.cid = client.createConstraint(
            cup, -1, -1, -1, p.JOINT_FIXED, [0, 0, 0], [0.0, 0.0, cup_height / 2], list(center),
            childFrameOrientation=list(orn),
        )
        client.changeConstraint(self.cid, maxForce=GRIP_FORCE)

    def follow(self, holder_pos, holder_orn) -> None:
        """Pull the cup to where a holder at (``holder_pos``, ``holder_orn``) holds it."""
        rot = quat_to_matrix(holder_orn)
        center = np.asarray(holder_pos) + self.standoff * rot[:, 2]
        self.client.changeConstraint(
            self.cid, list(center), jointChildFrameOrientation=list(matrix_to_quat(rot @ R_CUP_HOLDER.T)), maxForce=GRIP_FORCE
        )

    def remove(self) -> None:
        self.client.removeConstraint(self.cid)
