"""Scripted demonstrators: the human-proxy pour, the robot pour, and random exploration.

TCN training videos mix task demonstrations with undirected interaction. Each demonstrator plays
one episode of a ``PourEnv`` and yields one ``Step`` per control step; the recorder renders the
camera rig after each. Poses follow minimum-jerk segments between keyframes with seeded
variation in timing, pour angle and path, occasional partial pours, and occasional missed pours
(tipped out short of the bowl or carried past it, onto the table: the failures a learned reward
must tell apart from a pour). Every demonstrator performs the env's behaviour for the episode
(envs/behaviours.py): it pours into that behaviour's receptacle, and for ``half`` it pours part and
stops; in a scene with several behaviours a partial pour is the ``half`` behaviour, never a
variation of another.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .config import DEMONSTRATORS
from .pour_env import PourEnv

MISSES = ("short", "past")


@dataclass
class Step:
    """One control step of a demonstration: the action in the robot's action space that moves
    the commanded pose as the demonstrator did, and what ``step`` returned."""

    action: np.ndarray
    obs: object
    reward: float
    info: dict


def min_jerk(s: np.ndarray | float) -> np.ndarray | float:
    """Minimum-jerk profile on [0, 1] (Flash & Hogan 1985): zero velocity and acceleration at both ends."""
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10 - 15 * s + 6 * s**2)


def _segment(a: np.ndarray, b: np.ndarray, steps: int) -> list[np.ndarray]:
    """Poses (center xyz, tilt) for ``steps`` control steps from ``a`` to ``b`` (excluding ``a``)."""
    return [a + (b - a) * min_jerk(k / steps) for k in range(1, steps + 1)]


def pour_plan(env: PourEnv, rng: np.random.Generator, start: np.ndarray, partial: bool, miss: str | None = None) -> list[np.ndarray]:
    """Cup poses [x, y, z, tilt] per control step: lift, carry to the receptacle, pour, return, put down.

    ``start`` is the cup's grasp centre standing on the table; the receptacle is the env's
    behaviour's. ``partial`` is overridden by the behaviour where the scene has several (``half``
    pours part, the others pour all). A ``miss`` puts the particles on the table: ``short`` pours at
    a point up to 20% of the way from ``start`` to the receptacle, ``past`` carries the cup beyond it
    to the far end of the workspace (``x_limits``) and pours there.
    """
    if miss not in (None, *MISSES):
        raise ValueError(f"miss must be None or one of {MISSES}, got {miss!r}")
    world = env.world
    behaviour = world.behaviour
    if behaviour.goal < 1.0 or env.cfg.scene != "bowl":
        partial = False  # ``half`` pours like a full pour, stopped by the demonstrator (stop_due)
    u = rng.uniform
    pour = world.pour_point(behaviour.receptacle) + np.array([u(-0.012, 0.012), u(-0.01, 0.01), u(-0.02, 0.02)])
    if miss == "short":
        pour[:2] = start[:2] + u(0.0, 0.2) * (pour[:2] - start[:2])
    elif miss == "past":
        pour[0] = env.cfg.x_limits[1] - u(0.0, 0.01)
    angle = u(0.9, 1.3) if partial else u(1.95, 2.25)
    hold = int(rng.integers(3, 7)) if partial else int(rng.integers(12, 19))
    p0 = np.array([*start, 0.0])
    lifted = np.array([start[0] + u(-0.01, 0.03), start[1], start[2] + u(0.06, 0.1), 0.0])
    above = np.array([*pour, 0.0])
    tilted = np.array([*pour, angle])
    back = np.array([start[0], start[1], start[2] + u(0.04, 0.08), 0.0])
    plan = _segment(p0, lifted, int(rng.integers(6, 10)))
    plan += _segment(lifted, above, int(rng.integers(10, 15)))
    if behaviour.goal < 1.0:  # to just below the spilling angle, then slowly to a gentle pouring angle
        brink, tilted = np.array([*pour, SLOW_FROM]), np.array([*pour, SLOW_TO + (angle - 2.1) / 3])
        plan += _segment(above, brink, int(rng.integers(6, 11)))
        plan += _segment(brink, tilted, SLOW_STEPS)
    else:
        plan += _segment(above, tilted, int(rng.integers(6, 11)))
    plan += [tilted] * hold
    plan += _segment(tilted, above, int(rng.integers(6, 9)))
    plan += _segment(above, back, int(rng.integers(10, 15)))
    plan += _segment(back, p0, int(rng.integers(5, 8)))
    return plan


# A partial behaviour (goal < 1) tips the cup to SLOW_FROM (rad), on over SLOW_STEPS to about SLOW_TO (varied with the
# drawn pour angle), and back upright over UPRIGHT_STEPS once STOP_AT x its goal has left the cup (more follows).
SLOW_FROM, SLOW_TO, SLOW_STEPS, STOP_AT, UPRIGHT_STEPS = 1.5, 1.72, 10, 0.6, 4
ROBOT_STOP_AT = 0.05  # the arm's tilt lags its command by 2-3 control steps: it stops earlier


def stop_due(env: PourEnv, pose: np.ndarray, stop_at: float = STOP_AT) -> bool:
    """Whether a demonstrator of a behaviour with goal g < 1 must stop pouring now: the cup is
    tipped and ``stop_at`` x g of the particles have left it (as a person watches the flow)."""
    goal = env.world.behaviour.goal
    return goal < 1.0 and pose[3] > 0.0 and 1.0 - env.measurement.in_cup >= stop_at * goal


def stop_pour(poses: list, k: int, pose_of=lambda entry: entry, entry_of=lambda pose: pose) -> list:
    """``poses`` with the pour stopped after step ``k``: tipped back upright over ``UPRIGHT_STEPS`` steps
    to the next upright pose of the plan, then the rest of the plan. ``pose_of`` / ``entry_of`` map
    entries of a script to poses and back."""
    j = next(i for i in range(k + 1, len(poses)) if pose_of(poses[i])[3] == 0.0)
    back = _segment(pose_of(poses[k]), pose_of(poses[j]), UPRIGHT_STEPS)
    return poses[: k + 1] + [entry_of(p) for p in back] + poses[j + 1:]


def draw_miss(rng: np.random.Generator, miss_prob: float) -> str | None:
    """A missed pour with probability ``miss_prob``, short of or past the bowl with equal odds."""
    if rng.uniform() >= miss_prob:
        return None
    return MISSES[int(rng.integers(len(MISSES)))]


def human_script(env: PourEnv, seed: int, partial_prob: float = 0.1, miss_prob: float = 0.15) -> list[tuple[np.ndarray, str | None, bool]]:
    """The human proxy's episode as (hand pose [x, y, z, tilt], event, holding) per control step:
    reach for the cup, grasp, pour, put it down, release, withdraw. ``env`` must be freshly reset."""
    rng = np.random.default_rng([seed, 1])
    start = env.target_center.copy()  # the hand's grasp centre, away from the cup
    cup = env.world.measure().cup_center
    pregrasp = cup + np.array([0.0, -rng.uniform(0.05, 0.08), rng.uniform(0.0, 0.02)])
    reach = _segment(np.array([*start, 0.0]), np.array([*pregrasp, 0.0]), int(rng.integers(7, 12)))
    reach += _segment(np.array([*pregrasp, 0.0]), np.array([*cup, 0.0]), int(rng.integers(3, 5)))
    plan = pour_plan(env, rng, cup, partial=rng.uniform() < partial_prob, miss=draw_miss(rng, miss_prob))
    retreat = _segment(np.array([*cup, 0.0]), np.array([*pregrasp, 0.0]) + [0, -0.05, 0.06, 0], int(rng.integers(6, 10)))
    script = [(pose, None, False) for pose in reach] + [(reach[-1], "grasp", True)] + [(pose, None, True) for pose in plan]
    script += [(plan[-1], "release", False)] + [(pose, None, False) for pose in retreat]
    return _fit(script, env.cfg.episode_steps)


def _fit(script: list, steps: int) -> list:
    """``script`` cut or padded (standing still, not holding) to ``steps`` entries."""
    return (script + [(script[-1][0], None, False)] * steps)[:steps]


def _stop_script(script: list, k: int) -> list:
    """A human script with its pour stopped after entry ``k`` (see ``stop_pour``)."""
    return _fit(stop_pour(script, k, lambda e: e[0], lambda p: (p, None, True)), len(script))


def _hand_step(env: PourEnv, pose: np.ndarray, event: str | None) -> Step:
    """One control step of the hand: grasp or release first if the script says so, then move."""
    world = env.world
    if event == "grasp":
        world.holder.grasp(world.cup, env.cfg.cup_height)
    elif event == "release":
        world.holder.release()
    return _drive(env, pose)


def _drive(env: PourEnv, pose: np.ndarray) -> Step:
    action = env.action_for(pose[:3], pose[3])
    obs, reward, _, _, info = env.drive(pose[:3], pose[3])
    return Step(action, obs, reward, info)


def _human_pour(env: PourEnv, seed: int, partial_prob: float = 0.1, miss_prob: float = 0.15) -> Iterator[Step]:
    """The floating hand reaches for the cup, grasps it, pours, puts it down and withdraws."""
    script, stopped = human_script(env, seed, partial_prob, miss_prob), False
    for k in range(len(script)):
        pose, event, holding = script[k]
        yield _hand_step(env, pose, event)
        if holding and not stopped and stop_due(env, pose):
            script, stopped = _stop_script(script, k), True


def run_paired(human_env: PourEnv, robot_env: PourEnv, seed: int, partial_prob: float = 0.1,
               miss_prob: float = 0.15, behaviour: str | None = None) -> Iterator[tuple[Step, Step]]:
    """The human-proxy pour and, in a twin world built from the same seed (same scene, colours and
    cameras), the robot moving the cup along the same path: it holds the cup still while the hand
    reaches and after it lets go, and follows the hand's cup pose while the hand holds it.
    Resets both envs now; yields (human step, robot step) per control step."""
    if human_env.embodiment != "human" or robot_env.embodiment != "robot":
        raise ValueError("run_paired needs a human and a robot PourEnv")
    options = None if behaviour is None else {"behaviour": behaviour}
    human_env.reset(seed=seed, options=options)
    robot_env.reset(seed=seed, options=options)
    script = human_script(human_env, seed, partial_prob, miss_prob)

    def steps():
        nonlocal script
        held, stopped = np.array([*robot_env.target_center, 0.0]), False
        for k in range(len(script)):
            pose, event, holding = script[k]
            human = _hand_step(human_env, pose, event)
            held = pose if holding else held
            yield human, _drive(robot_env, held)
            if holding and not stopped and stop_due(human_env, pose):
                script, stopped = _stop_script(script, k), True

    return steps()


def _robot_pour(env: PourEnv, seed: int, noise: float = 0.15, partial_prob: float = 0.1,
                miss_prob: float = 0.15) -> Iterator[Step]:
    """The robot follows a pour plan through its own action space, with Gaussian action noise
    and a seeded pause before it starts."""
    rng = np.random.default_rng([seed, 2])
    start = env.target_center.copy()
    plan = pour_plan(env, rng, start, partial=rng.uniform() < partial_prob, miss=draw_miss(rng, miss_prob))
    plan = [np.array([*start, 0.0])] * int(rng.integers(0, 8)) + plan
    stopped = False
    for k in range(env.cfg.episode_steps):
        goal = plan[min(k, len(plan) - 1)]
        action = np.clip(env.action_for(goal[:3], goal[3]) + noise * rng.standard_normal(env.action_space.shape), -1, 1)
        action = action.astype(np.float32)
        obs, reward, _, _, info = env.step(action)
        yield Step(action, obs, reward, info)
        if k < len(plan) and not stopped and stop_due(env, goal, ROBOT_STOP_AT):
            plan, stopped = stop_pour(plan, k), True


def _random_exploration(env: PourEnv, seed: int, smoothing: float = 0.85) -> Iterator[Step]:
    """Smooth random actions (a first-order low-pass filter of Gaussian noise)."""
    rng = np.random.default_rng([seed, 3])
    a = np.zeros(env.action_space.shape)
    for _ in range(env.cfg.episode_steps):
        a = smoothing * a + np.sqrt(1 - smoothing**2) * rng.standard_normal(a.shape)
        action = np.clip(a, -1, 1).astype(np.float32)
        obs, reward, _, _, info = env.step(action)
        yield Step(action, obs, reward, info)


_PLAYERS = {"human": _human_pour, "robot": _robot_pour, "random": _random_exploration}


def run_demonstrator(name: str, env: PourEnv, seed: int, behaviour: str | None = None, **kwargs) -> Iterator[Step]:
    """Reset ``env`` with ``seed`` (and ``behaviour``, default the env's config's) now and return
    the demonstrator's steps, one per control step.

    ``name`` is ``human`` (``env`` built with ``embodiment="human"``), ``robot`` or ``random``
    (robot embodiment). Keyword arguments go to the demonstrator (``partial_prob``, ``miss_prob``, ``noise``,
    ``smoothing``).
    """
    if name not in _PLAYERS:
        raise ValueError(f"unknown demonstrator {name!r}; choose from {DEMONSTRATORS}")
    wanted = "human" if name == "human" else "robot"
    if env.embodiment != wanted:
        raise ValueError(f"the {name} demonstrator needs PourEnv(embodiment={wanted!r}), got {env.embodiment!r}")
    env.reset(seed=seed, options=None if behaviour is None else {"behaviour": behaviour})
    return _PLAYERS[name](env, seed, **kwargs)
