"""The scene of several pouring tasks (a bowl and a jar) against simulator ground truth."""
import gymnasium as gym
import numpy as np
import pytest

from tcn_robot.envs import FAMILY, PourEnv, run_demonstrator, run_paired
from tcn_robot.envs.behaviours import BEHAVIOURS, behaviours_of, performed
from tcn_robot.envs.task import TABLE_CENTER, TABLE_HALF

CHEAP = {"physics_hz": 120.0, "substeps": 6, "image_size": 32}  # the quickstart's physics


def _family(**kw):
    return PourEnv({**FAMILY, **CHEAP}, **kw)


def test_scores_and_the_performed_behaviour_follow_their_definitions():
    f = lambda bowl=0.0, jar=0.0, cup=0.0: {"bowl": bowl, "jar": jar, "cup": cup}  # noqa: E731
    assert BEHAVIOURS["bowl"].score(f(bowl=0.7, cup=0.3)) == pytest.approx(0.7)
    assert BEHAVIOURS["jar"].score(f(jar=0.9)) == pytest.approx(0.9)
    assert BEHAVIOURS["half"].score(f(bowl=0.5, cup=0.5)) == pytest.approx(1.0)
    # 0.1 too much in the bowl, and the cup 0.1 short of the half it should keep: 1 - 0.2 / 0.5
    assert BEHAVIOURS["half"].score(f(bowl=0.6, cup=0.4)) == pytest.approx(0.6)
    assert BEHAVIOURS["half"].score(f(bowl=0.5, cup=0.1)) == pytest.approx(0.2)  # the rest spilled
    assert BEHAVIOURS["half"].score(f(bowl=1.0)) == 0.0
    assert performed(f(bowl=0.95), "bowl_jar") == "bowl"
    assert performed(f(jar=0.8, bowl=0.1), "bowl_jar") == "jar"
    assert performed(f(bowl=0.45, cup=0.55), "bowl_jar") == "half"
    assert performed(f(cup=1.0), "bowl_jar") == "none"
    assert performed(f(jar=0.9), "bowl") == "none"  # the single bowl's scene has no jar
    assert behaviours_of("bowl") == ("bowl", "half") and behaviours_of("bowl_jar") == ("bowl", "jar", "half")


def test_sides_are_drawn_and_colours_do_not_name_the_receptacle():
    env = _family()
    bowl_on_plus_y, same_colour = [], []
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        (bowl, _, _), (jar, _, _) = env.world.receptacles["bowl"], env.world.receptacles["jar"]
        assert np.sign(bowl[1]) == -np.sign(jar[1])
        assert np.allclose(obs[-5:-1], [*bowl[:2], *jar[:2]])  # both centres in the state, bowl first
        bowl_on_plus_y.append(bowl[1] > 0)
        c = lambda name: env.world.sim.client.getVisualShapeData(env.world.sim.bodies[name])[0][7]  # noqa: E731
        same_colour.append(np.allclose(c("bowl"), c("jar")))
    env.close()
    assert 5 <= sum(bowl_on_plus_y) <= 15
    assert not any(same_colour)
    assert env.observation_space.shape == (7 + 3 + 4 + 1 + 4 + 1,) and env.action_space.shape == (4,)


def test_same_seed_gives_the_same_family_episode_and_the_behaviour_asked_for_draws_nothing():
    actions = np.random.default_rng(0).uniform(-1, 1, size=(8, 4)).astype(np.float32)
    runs = []
    for _ in range(2):
        env = _family(obs_type="pixels")
        out = [env.reset(seed=5, options={"behaviour": "jar"})]
        out += [env.step(a)[:2] for a in actions]
        runs.append(out)
        env.close()
    for (o1, i1), (o2, i2) in zip(runs[0], runs[1]):
        assert all(np.array_equal(o1[k], o2[k]) for k in o1) and i1 == i2
    assert runs[0][0][1]["behaviour"] == "jar"
    # the behaviour asked for changes the reward, never the scene drawn
    a, b = PourEnv(**CHEAP), PourEnv(**CHEAP, behaviour="half")
    a.reset(seed=3)
    b.reset(seed=3)
    assert np.array_equal(a.world.bowl_pos, b.world.bowl_pos) and a.world.cameras == b.world.cameras


def test_bowl_side_fixes_the_arrangement_and_nothing_else():
    drawn, fixed = _family(), _family(bowl_side=-1)
    sides = []
    for seed in range(12):
        drawn.reset(seed=seed)
        fixed.reset(seed=seed)
        (b0, _, _), (j0, _, _) = drawn.world.receptacles["bowl"], drawn.world.receptacles["jar"]
        (b1, _, _), (j1, _, _) = fixed.world.receptacles["bowl"], fixed.world.receptacles["jar"]
        assert b1[1] < 0 < j1[1]
        # the same x and distance from the middle as the drawn scene's, and the same cameras
        assert (b1[0], abs(b1[1]), j1[0], abs(j1[1])) == (b0[0], abs(b0[1]), j0[0], abs(j0[1]))
        assert drawn.world.cameras == fixed.world.cameras
        sides.append(np.sign(b0[1]))
    assert set(sides) == {-1.0, 1.0}  # the drawn scenes had the bowl on both sides
    for env in (drawn, fixed):
        env.close()
    with pytest.raises(ValueError, match="bowl_side"):
        PourEnv(bowl_side=2)
    with pytest.raises(ValueError, match="no jar"):
        PourEnv(bowl_side=1)


def test_an_unknown_behaviour_is_refused_by_name():
    with pytest.raises(ValueError, match="jar"):
        PourEnv(behaviour="jar")  # the single-bowl scene has no jar
    env = _family()
    with pytest.raises(ValueError, match="pour_all"):
        env.reset(seed=0, options={"behaviour": "pour_all"})


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
@pytest.mark.parametrize("demonstrator", ["human", "robot"])
def test_each_scripted_behaviour_achieves_its_ground_truth(behaviour, demonstrator):
    env = _family(embodiment=demonstrator)
    scores, done = [], []
    for seed in range(6):
        for step in run_demonstrator(demonstrator, env, seed, behaviour=behaviour, miss_prob=0.0):
            pass
        scores.append(step.info["goal_score"])
        done.append(performed(env.measurement.fractions, "bowl_jar"))
    env.close()
    assert done.count(behaviour) >= 5, (done, scores)
    assert np.mean(scores) >= 0.75, scores


def test_a_spill_stays_on_the_table_where_the_cameras_see_it():
    """With PyBullet's default friction spilled particles slide and roll off the table, out of view."""
    env = _family()
    table = np.array(TABLE_CENTER) - TABLE_HALF[:2], np.array(TABLE_CENTER) + TABLE_HALF[:2]
    for seed in range(4):
        for step in run_demonstrator("robot", env, seed, behaviour="bowl", miss_prob=1.0):  # short of or past the bowl
            pass
        assert step.info["fraction_spilled"] > 0.6
        pts = env.world.particle_positions()
        assert np.all(pts[:, 2] > 0) and np.all(pts[:, 2] < 0.05)  # none fell off the table, none left in the air
        assert np.all((pts[:, :2] > table[0]) & (pts[:, :2] < table[1]))
    env.close()


def test_the_env_reward_follows_the_behaviour_asked_for():
    """A scripted jar pour earns more than a bowl pour when the reward asks for the jar, and less
    when it asks for the bowl (the returns are recomputed from the same episodes' states)."""
    env = _family(embodiment="robot")
    returns = {}
    for played in ("bowl", "jar"):
        rewards = {asked: 0.0 for asked in ("bowl", "jar")}
        for step in run_demonstrator("robot", env, 2, behaviour=played, miss_prob=0.0):
            m = env.measurement
            for asked in rewards:
                env.world.behaviour = BEHAVIOURS[asked]
                rewards[asked] += env.world.reward(m)
            env.world.behaviour = BEHAVIOURS[played]
        returns[played] = rewards
    env.close()
    assert returns["jar"]["jar"] > returns["bowl"]["jar"]
    assert returns["bowl"]["bowl"] > returns["jar"]["bowl"]


def test_the_paired_twin_stops_the_half_pour_with_the_hand():
    human, robot = _family(embodiment="human"), _family(embodiment="robot")
    for h, r in run_paired(human, robot, seed=1, miss_prob=0.0, behaviour="half"):
        pass
    assert performed(human.measurement.fractions, "bowl_jar") == "half"
    assert 0.2 <= r.info["fraction_in_bowl"] <= 0.8


def test_the_family_ids_make_the_family():
    env = gym.make("TCNPourFamily-v0", behaviour="half", **CHEAP).unwrapped
    _, info = env.reset(seed=0)
    assert env.cfg.scene == "bowl_jar" and info["behaviour"] == "half" and "fraction_in_jar" in info


def test_record_names_each_episodes_behaviour_and_keeps_the_jar_fraction(tmp_path):
    import json

    from tcn_robot.data.episodes import Dataset
    from tcn_robot.data.record import record_dataset
    from tcn_robot.envs import make_pour_config

    cfg = make_pour_config({**FAMILY, **CHEAP, "num_particles": 12})
    s = record_dataset(cfg, tmp_path / "d", 6, 2, 32, 0, "human=1", behaviours="bowl=1,jar=1,half=1")
    assert s["behaviours"] == {"bowl": 2, "jar": 2, "half": 2}
    for ep in Dataset.open(tmp_path / "d").episodes:
        states = ep.states()
        assert ep.meta["behaviour"] in ("bowl", "jar", "half")
        assert ep.meta["fraction_in_jar"] == pytest.approx(float(states["fraction_in_jar"][-1]))
        if ep.meta["behaviour"] == "jar" and ep.meta["behaviour_performed"] == "jar":
            assert states["fraction_in_jar"][-1] > 0.5 and states["fraction_in_bowl"][-1] < 0.2
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["settings"]["behaviours"] == pytest.approx({"bowl": 1 / 3, "jar": 1 / 3, "half": 1 / 3})
