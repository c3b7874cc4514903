"""The robot: pybullet_data's KUKA LBR iiwa with low-polygon visuals and a two-finger holder.

The stock meshes cost about 4 ms a frame in TinyRenderer here, more than the rest of the scene;
``lowpoly_urdf`` keeps the iiwa's kinematics, limits and inertias and swaps every mesh for a
cylinder from joint to joint. The cup is fixed rigidly to the flange by a constraint; the arm
follows task-space targets through inverse kinematics and position-controlled joint motors.
"""
from __future__ import annotations

import hashlib
import math
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..io import atomic_write_text
from .bullet import p, pybullet_data
from .grasp import Grip, holder_pose
from .sim import Simulator

FLANGE_LENGTH = 0.045  # from the link 7 origin to the flange face
PALM_THICKNESS = 0.02
NUM_JOINTS = 7
EE_LINK = 7  # the gripper link; its frame is the holder frame of grasp.py
GRIPPER_YAW = 1.0  # gripper frame turned about the flange axis so joint 7 sits mid-range while pouring
ARM_COLOR = (1.0, 0.45, 0.05, 1.0)
JOINT_COLOR = (0.25, 0.25, 0.25, 1.0)
GRIPPER_COLOR = (0.15, 0.15, 0.18, 1.0)
# Radius of the cylinder drawn for each link 0..7 (metres).
_LINK_RADII = (0.075, 0.065, 0.06, 0.06, 0.055, 0.055, 0.05, 0.04)


def _rpy_for_axis(d: np.ndarray) -> tuple[float, float, float]:
    """Roll-pitch-yaw that turns the z axis onto direction ``d``."""
    d = d / np.linalg.norm(d)
    pitch = math.atan2(math.hypot(d[0], d[1]), d[2])
    yaw = math.atan2(d[1], d[0]) if abs(pitch) > 1e-9 else 0.0
    q = p.getQuaternionFromAxisAngle([-math.sin(yaw), math.cos(yaw), 0.0], pitch)
    return p.getEulerFromQuaternion(q)


def _gripper_link(finger_gap: float) -> str:
    """URDF of a fixed palm and two fingers on the flange, in the holder frame (see grasp.py)."""
    half_len = finger_gap  # fingers reach to the cup's centre line
    boxes = [
        ((0.035, finger_gap + 0.012, PALM_THICKNESS / 2), (0, 0, PALM_THICKNESS / 2)),
        ((0.014, 0.006, half_len / 2), (0, finger_gap + 0.006, PALM_THICKNESS + half_len / 2)),
        ((0.014, 0.006, half_len / 2), (0, -finger_gap - 0.006, PALM_THICKNESS + half_len / 2)),
    ]
    visuals = "".join(
        f'<visual><origin xyz="{x} {y} {z}" rpy="0 0 0"/><geometry><box size="{2*a} {2*b} {2*c}"/></geometry></visual>'
        for (a, b, c), (x, y, z) in boxes
    )
    return (
        '<link name="tcn_gripper"><inertial><origin xyz="0 0 0.01"/><mass value="0.2"/>'
        '<inertia ixx="1e-4" ixy="0" ixz="0" iyy="1e-4" iyz="0" izz="1e-4"/></inertial>'
        f"{visuals}</link>"
        '<joint name="tcn_gripper_joint" type="fixed"><parent link="lbr_iiwa_link_7"/>'
        f'<child link="tcn_gripper"/><origin xyz="0 0 {FLANGE_LENGTH}" rpy="0 0 {GRIPPER_YAW}"/></joint>'
    )


def lowpoly_urdf(finger_gap: float) -> str:
    """Path of the iiwa URDF with cylinder visuals, no link collisions, and the gripper.

    Written once per content into the temp folder (atomically), since pybullet loads URDF
    only from files.
    """
    src = Path(pybullet_data.getDataPath()) / "kuka_iiwa" / "model.urdf"
    root = ET.parse(src).getroot()
    joints = {j.find("parent").get("link"): j for j in root.findall("joint")}
    for i, link in enumerate(root.findall("link")):
        for tag in ("visual", "collision"):
            for el in link.findall(tag):
                link.remove(el)
        child = joints.get(link.get("name"))
        offset = (
            np.array([float(v) for v in child.find("origin").get("xyz").split()])
            if child is not None
            else np.array([0.0, 0.0, FLANGE_LENGTH])
        )
        length = float(np.linalg.norm(offset))
        rpy = " ".join(f"{a:.6f}" for a in _rpy_for_axis(offset))
        mid = " ".join(f"{v:.6f}" for v in offset / 2)
        ET.SubElement(link, "visual").extend(
            ET.fromstring(
                f'<v><origin xyz="{mid}" rpy="{rpy}"/><geometry><cylinder radius="{_LINK_RADII[i]}" length="{length:.6f}"/></geometry></v>'
            )
        )
    text = ET.tostring(root, encoding="unicode").replace("</robot>", _gripper_link(finger_gap) + "</robot>")
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"tcn_robot_iiwa_{digest}.urdf"
    if not path.exists():
        atomic_write_text(path, text)
    return str(path)


class Robot:
    """KUKA iiwa holding the cup at its flange; commanded by cup-centre position and tilt.

    Args:
        sim: the simulator to build into.
        base: world position of the robot base (3,).
        standoff: distance from the gripper frame (flange face) to the cup's grasp centre along the tool axis.
        finger_gap: half the distance between the fingers (the cup's outer radius).
        substeps: physics steps per control step, over which joint targets are interpolated.
    """

    def __init__(self, sim: Simulator, base, standoff: float, finger_gap: float, substeps: int) -> None:
        self.sim = sim
        self.standoff = standoff
        self.substeps = substeps
        c = sim.client
        self.body = c.loadURDF(lowpoly_urdf(finger_gap), list(base), useFixedBase=True)
        sim.bodies["robot"] = self.body
        info = [c.getJointInfo(self.body, j) for j in range(NUM_JOINTS)]
        self.lower = np.array([i[8] for i in info])
        self.upper = np.array([i[9] for i in info])
        self.max_force = np.array([i[10] for i in info])
        self.rest = np.array([-1.43, 0.21, 0.46, 1.2, -0.16, 1.11, 0.12])  # found by search: low IK error, far from limits
        for j in range(NUM_JOINTS + 2):
            c.changeVisualShape(self.body, j - 1, rgbaColor=list(ARM_COLOR if j % 2 else JOINT_COLOR))
        c.changeVisualShape(self.body, NUM_JOINTS, rgbaColor=list(GRIPPER_COLOR))
        self._q_target = np.zeros(NUM_JOINTS)
        self._q_from = np.zeros(NUM_JOINTS)
        self._grip: Grip | None = None

    def ik(self, center: np.ndarray, tilt: float) -> np.ndarray:
        """Joint angles (7,) that put the cup's grasp centre at ``center`` with ``tilt``."""
        pos, orn = holder_pose(center, tilt, self.standoff)
        q = self.sim.client.calculateInverseKinematics(
            self.body,
            EE_LINK,
            list(pos),
            list(orn),
            lowerLimits=list(self.lower),
            upperLimits=list(self.upper),
            jointRanges=list(self.upper - self.lower),
            restPoses=list(self.rest),
            maxNumIterations=60,
            residualThreshold=1e-5,
        )
        return np.clip(np.asarray(q[:NUM_JOINTS]), self.lower, self.upper)

    def place(self, center: np.ndarray, tilt: float) -> None:
        """Teleport the arm to the IK solution for a cup at ``center``/``tilt`` (reset only)."""
        c = self.sim.client
        # Solve from the rest pose, twice, so the solution does not depend on earlier episodes.
        for j, v in enumerate(self.rest):
            c.resetJointState(self.body, j, float(v))
        for _ in range(2):
            q = self.ik(center, tilt)
            for j, v in enumerate(q):
                c.resetJointState(self.body, j, float(v))
        self._q_target = q
        self._q_from = q.copy()
        self._drive(q)

    @property
    def holding(self) -> bool:
        return self._grip is not None

    def grasp(self, cup: int, cup_height: float) -> None:
        """Hold ``cup`` in the gripper from now on, at mid-height."""
        self._grip = Grip(self.sim.client, cup, self.standoff, cup_height)
        self._grip.follow(*self.gripper_pose())

    def command(self, center: np.ndarray, tilt: float) -> None:
        """Set the cup target for the next control step (IK once; interpolated per substep)."""
        self._q_from = self.joint_angles()
        self._q_target = self.ik(center, tilt)

    def substep(self, k: int) -> None:
        """Joint targets for physics step ``k`` (1-based) of the current control step."""
        a = k / self.substeps
        self._drive((1 - a) * self._q_from + a * self._q_target)
        if self._grip is not None:
            self._grip.follow(*self.gripper_pose())

    def gripper_pose(self) -> tuple[tuple, tuple]:
        """World position and quaternion of the gripper (holder) frame."""
        state = self.sim.client.getLinkState(self.body, EE_LINK, computeForwardKinematics=True)
        return state[4], state[5]

    def _drive(self, q: np.ndarray) -> None:
        self.sim.client.setJointMotorControlArray(
            self.body, list(range(NUM_JOINTS)), p.POSITION_CONTROL, targetPositions=list(q), forces=list(self.max_force)
        )

    def joint_angles(self) -> np.ndarray:
        return np.array([s[0] for s in self.sim.client.getJointStates(self.body, range(NUM_JOINTS))])
