"""The pouring world against gymnasium's and SB3's checkers and simulator ground truth."""
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from tcn_robot.config import load_config
from tcn_robot.envs import ATTRIBUTES, ENV_IDS, PourEnv, make_pour_config, run_demonstrator
from tcn_robot.envs.checks import watch_wall_crossings
from tcn_robot.envs.demonstrators import MISSES, pour_plan


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_checkers_pass_for_every_registered_id(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        check_env(gym.make(env_id, render_mode="rgb_array", episode_steps=10).unwrapped)
        sb3_check_env(gym.make(env_id, render_mode="rgb_array", episode_steps=10).unwrapped, skip_render_check=False)


def _rollout(env, seed, actions):
    obs, info = env.reset(seed=seed)
    out = [(obs, info, env.render_views())]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs, info, env.render_views(), r, term))
    return out


def _equal(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return np.array_equal(np.asarray(a), np.asarray(b))


def test_same_seed_and_actions_give_identical_observations_info_and_images(small_world):
    actions = np.random.default_rng(0).uniform(-1, 1, size=(12, 3)).astype(np.float32)
    runs = []
    for _ in range(2):
        env = PourEnv(obs_type="pixels", jitter_deg=2.0, jitter_m=0.01, **small_world)
        runs.append(_rollout(env, 7, actions))
        env.close()
    assert _equal(runs[0], runs[1])
    env = PourEnv(obs_type="pixels", **small_world)
    other = _rollout(env, 8, actions)
    assert not np.array_equal(other[0][2][0], runs[0][0][2][0]), "a different seed should draw a different scene"


def test_reset_with_the_same_seed_on_one_env_repeats_the_episode(small_world):
    env = PourEnv(**small_world)
    a = [env.reset(seed=3)[0]] + [env.step(np.ones(3, np.float32))[0] for _ in range(5)]
    env.reset(seed=11)
    env.step(-np.ones(3, np.float32))
    b = [env.reset(seed=3)[0]] + [env.step(np.ones(3, np.float32))[0] for _ in range(5)]
    assert _equal(a, b)


def test_close_twice_is_safe_and_reset_after_close_reopens(small_world):
    env = PourEnv(**small_world)
    env.reset(seed=0)
    env.close()
    env.close()
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape
    env.close()


def test_render_is_the_agent_view_of_the_rig_at_the_same_instant(small_world):
    env = PourEnv(render_mode="rgb_array", agent_view=2, jitter_deg=3.0, **small_world)
    env.reset(seed=1)
    env.step(np.array([1, 1, 0], np.float32))
    views = env.render_views()
    assert len(views) == 3 and all(v.shape == (32, 32, 3) and v.dtype == np.uint8 for v in views)
    assert np.array_equal(env.render(), views[2])
    assert not np.array_equal(views[0], views[1])


def test_action_moves_the_cup_the_way_it_says(small_world):
    """Ground truth: +x moves the cup toward the bowl, +z lifts it, +tilt tips it toward the bowl."""
    env = PourEnv(**small_world)
    env.reset(seed=0)
    start = env.measurement
    for _ in range(8):
        env.step(np.array([1.0, 1.0, 0.0], np.float32))
    moved = env.measurement
    assert moved.cup_center[0] - start.cup_center[0] > 0.1
    assert moved.cup_center[2] - start.cup_center[2] > 0.1
    for _ in range(6):
        env.step(np.array([0.0, 0.0, 1.0], np.float32))
    assert env.measurement.tilt > 0.6


def _world(which: str):
    """The default world's config, or the quickstart's (cheaper physics: docs/world.md)."""
    return load_config(None).env if which == "quickstart" else None


@pytest.mark.parametrize("world", ["default", "quickstart"])
@pytest.mark.parametrize("name", ["human", "robot"])
def test_no_particle_passes_through_the_cup_walls_during_scripted_pours(name, world):
    env = PourEnv(_world(world), embodiment="human" if name == "human" else "robot")
    for seed in range(3):
        steps = run_demonstrator(name, env, seed, partial_prob=0.0, miss_prob=0.0)
        state = watch_wall_crossings(env.world)  # after the reset: build() settles through the plain step
        left = 0
        for step in steps:
            left = 1 - step.info["fraction_in_cup"]
        assert state["steps"] == env.cfg.episode_steps * env.cfg.substeps
        assert left > 0.9, "the check is only meaningful if the particles actually left the cup"
        assert state["count"] == 0, f"seed {seed}: {state['count']} particle crossings through the wall"
    env.close()


def test_the_crossing_check_catches_a_particle_pushed_through_the_wall():
    """The instrument above must be able to fail: teleport a particle through the wall."""
    env = PourEnv(num_particles=5, episode_steps=5)
    env.reset(seed=0)
    world = env.world
    state = watch_wall_crossings(world)
    world.sim.step()
    pos, quat = world.cup_pose()
    outside = np.asarray(pos) + np.array([world.cfg.cup_radius + 0.03, 0.0, 0.02])
    world.sim.client.resetBasePositionAndOrientation(world.particles[0], outside.tolist(), [0, 0, 0, 1])
    world.sim.step()
    assert state["count"] == 1


def _final_fractions(name, seeds, world="default", **kwargs):
    env = PourEnv(_world(world), embodiment="human" if name == "human" else "robot")
    out = []
    for seed in seeds:
        for step in run_demonstrator(name, env, seed, **kwargs):
            pass
        out.append(step.info["fraction_in_bowl"])
    env.close()
    return np.array(out)


@pytest.mark.parametrize("world", ["default", "quickstart"])
@pytest.mark.parametrize("name", ["human", "robot"])
def test_scripted_pours_get_90_percent_into_the_bowl_on_9_of_10_seeds(name, world):
    fractions = _final_fractions(name, range(10), world, partial_prob=0.0, miss_prob=0.0)
    assert np.sum(fractions >= 0.9) >= 9, fractions


@pytest.mark.parametrize("name", ["human", "robot"])
def test_missed_pours_land_on_the_table(name):
    env = PourEnv(embodiment="human" if name == "human" else "robot")
    for seed in range(4):
        for step in run_demonstrator(name, env, seed, partial_prob=0.0, miss_prob=1.0):
            pass
        assert step.info["fraction_in_bowl"] < 0.2 and step.info["fraction_spilled"] > 0.7, (seed, step.info)
    env.close()


@pytest.mark.parametrize("miss", MISSES)
def test_each_kind_of_miss_lands_on_the_table(miss):
    env = PourEnv()
    for seed in range(3):
        env.reset(seed=seed)
        start = env.target_center.copy()
        for pose in pour_plan(env, np.random.default_rng(seed), start, partial=False, miss=miss):
            env.drive(pose[:3], pose[3])
        m = env.measurement
        assert m.in_bowl < 0.2 and m.spilled > 0.7, (seed, m.in_bowl, m.spilled)
        if miss == "past":  # the particles lie beyond the bowl, not short of it
            assert env.world.particle_positions()[:, 0].mean() > env.world.bowl_pos[0]
    env.close()


def test_partial_pours_and_random_exploration_get_far_less():
    partial = _final_fractions("human", range(4), partial_prob=1.0)
    random = _final_fractions("random", range(10))
    assert partial.mean() < 0.6, partial
    assert random.mean() < 0.4, random


def test_every_attribute_takes_two_values_in_a_human_proxy_episode():
    env = PourEnv(embodiment="human")
    seen = {a: set() for a in ATTRIBUTES}
    for step in run_demonstrator("human", env, 0, partial_prob=0.0, miss_prob=0.0):
        for a in ATTRIBUTES:
            seen[a].add(step.info[a])
    env.close()
    assert all(len(v) >= 2 for v in seen.values()), seen
    assert seen["container_angle"] == {0, 1, 2, 3}


def test_fractions_partition_the_particles_and_success_follows_the_bowl(small_world):
    env = PourEnv(**small_world)
    _, info = env.reset(seed=0)
    assert info["fraction_in_cup"] == 1.0 and not info["is_success"]
    for _ in range(10):
        _, _, _, _, info = env.step(env.action_space.sample())
        total = sum(info[k] for k in ("fraction_in_bowl", "fraction_in_cup", "fraction_spilled", "fraction_in_air"))
        assert total == pytest.approx(1.0)
        assert info["is_success"] == (info["fraction_in_bowl"] >= env.cfg.success_fraction)


def test_step_refuses_the_human_embodiment(small_world):
    env = PourEnv(embodiment="human", **small_world)
    env.reset(seed=0)
    with pytest.raises(RuntimeError, match="drive"):
        env.step(np.zeros(3, np.float32))


def test_bad_config_names_the_key():
    from omegaconf.errors import ConfigKeyError

    with pytest.raises(ConfigKeyError, match="num_particle"):
        make_pour_config(num_particle=3)
    with pytest.raises(ValueError, match="agent_view"):
        make_pour_config(agent_view=7)


def test_paired_twin_worlds_share_the_scene_and_the_cup_path():
    from tcn_robot.envs import run_paired

    human, robot = PourEnv(embodiment="human"), PourEnv(embodiment="robot")
    steps = run_paired(human, robot, seed=4, partial_prob=0.0, miss_prob=0.0)
    assert human.world.cameras == robot.world.cameras
    assert np.array_equal(human.world.bowl_pos, robot.world.bowl_pos)
    gaps = []
    for h, r in steps:
        if h.info["contact"]:  # while the hand holds the cup the robot carries it along the same path
            gaps.append(np.linalg.norm(human.measurement.cup_center - robot.measurement.cup_center))
    assert len(gaps) > 40 and np.median(gaps) < 0.02 and max(gaps) < 0.06
    assert h.info["fraction_in_bowl"] >= 0.9 and r.info["fraction_in_bowl"] >= 0.9


def test_a_hand_held_camera_drifts_smoothly_within_its_limits_and_draws_nothing_from_the_scene(small_world):
    from tcn_robot.envs.cameras import drift_path

    path = drift_path(np.random.default_rng(0), 500, 1.0, 0.004, 12.0, 0.06)
    assert np.all(path[0] == 0) and np.all(np.abs(path[:, :2]) <= 12.0) and np.all(np.abs(path[:, 2:]) <= 0.06)
    steps = np.abs(np.diff(path, axis=0))
    assert steps[:, :2].mean() < 1.5 and steps[:, :2].max() < 6.0  # about the step size asked for, never a jump
    assert np.ptp(path[:, 0]) > 8.0  # it wanders over most of its range
    still, held = PourEnv(**small_world), PourEnv(drift_deg=1.0, drift_m=0.004, **small_world)
    still.reset(seed=2)
    held.reset(seed=2)
    assert np.array_equal(still.world.bowl_pos, held.world.bowl_pos) and still.world.cameras == held.world.cameras
    first = held.world.camera_now(0)
    assert first == still.world.camera_now(0)  # it starts where the fixed camera stands
    for _ in range(10):
        held.step(np.zeros(3, np.float32))
    moved = held.world.camera_now(1)
    assert moved != held.world.cameras[1] and moved == held.world.camera_now(1)  # the same instant renders the same


@pytest.mark.parametrize("rig", ["quickstart", "wide_rig"])
def test_novel_rig_cameras_lie_outside_every_training_camera_range_on_every_axis(rig):
    """configs/novel_rig.yaml films from placements no training camera of ``rig`` can take: each of its cameras'
    yaw, pitch, distance and field-of-view ranges is disjoint from the same range of every camera ``rig`` records."""
    cfg = load_config(rig)
    trained = cfg.env.cameras[: cfg.record.views]
    assert len(trained) == cfg.record.views
    for cam in load_config("novel_rig").env.cameras:
        for t in trained:
            for axis in ("yaw", "pitch", "distance", "fov"):
                (lo, hi), (tlo, thi) = getattr(cam, axis), getattr(t, axis)
                assert hi < tlo or lo > thi, (rig, axis, getattr(cam, axis), getattr(t, axis))
