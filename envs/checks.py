"""Instruments on the pouring world's physics, for tests and benchmarks (benchmarks/physics_budget.py)."""
from __future__ import annotations

import numpy as np


def watch_wall_crossings(world) -> dict:
    """Wrap ``world.sim.step`` to count particles that go from inside the cup to inside or beyond its
    wall (or floor) below the rim within one physics step: passing through, not over the rim.
    Returns the live counters ``{"count", "steps"}``; call after ``reset`` (``build`` settles through
    the plain step)."""
    cfg = world.cfg
    inner, wall, height, r = cfg.cup_radius, cfg.cup_wall, cfg.cup_height, cfg.particle_radius
    state = {"inside": None, "count": 0, "steps": 0}
    step = world.sim.step

    def checked_step():
        step()
        local = world.cup_local(world.particle_positions())
        radial = np.hypot(local[:, 0], local[:, 1])
        inside = (radial < inner) & (local[:, 2] >= 0) & (local[:, 2] <= height)
        through = ((radial > inner + wall / 2) | (local[:, 2] < -wall / 2)) & (local[:, 2] < height - 2 * r)
        if state["inside"] is not None:
            state["count"] += int(np.sum(state["inside"] & through))
        state["inside"] = inside
        state["steps"] += 1

    world.sim.step = checked_step
    return state
