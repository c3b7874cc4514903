"""The swap test (benchmarks/swap_test.py) on a tiny pipeline of the scene of several pouring tasks."""
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tcn_robot.cli import main
from tcn_robot.config import load_config
from tcn_robot.data.episodes import Dataset, load_episode
from tcn_robot.envs import FAMILY, PourEnv

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SWAP = BENCHMARKS / "swap_test.py"
TINY_FAMILY = ["--config", "smoke", "train.steps=4", "train.val_every=2", "train.checkpoint_every=2", "rl.steps=128",
               "rl.n_envs=1", "rl.eval_every=128", "env.scene=bowl_jar", "env.action_axes=[x,y,z,tilt]",
               "env.y_limits=[-0.2,0.2]", "record.behaviours=bowl=1,jar=1,half=1", "record.heldout_episodes=6",
               "record.heldout_demonstrators=human=1"]


@pytest.fixture(scope="module")
def tiny_family(tmp_path_factory):
    """A tiny pipeline of the family scene and one held-out demo of each behaviour."""
    pipe = tmp_path_factory.mktemp("family") / "pipe"
    assert main(["pipeline", "--out", str(pipe), *TINY_FAMILY]) == 0
    demos = {}
    for ep in Dataset.open(pipe / "data_heldout").episodes:  # any demo of each behaviour: a tiny world's pours need not succeed
        demos.setdefault(ep.meta["behaviour"], ep.path)
    assert sorted(demos) == ["bowl", "half", "jar"]
    return pipe, demos


@pytest.mark.slow
def test_the_swap_test_writes_a_matrix_per_arm_with_rows_of_shares(tiny_family, tmp_path):
    pipe, demos = tiny_family
    out = tmp_path / "swap"
    subprocess.run([sys.executable, str(SWAP), "--out", str(out), "--pipeline", str(pipe), "--seeds", "0,1", "--steps", "64",
                    *[f"--demo={b}={p}" for b, p in demos.items()]], check=True)
    summary = json.loads((out / "summary.json").read_text())
    given = {"bowl": "jar", "jar": "half", "half": "bowl"}  # the blind control: each row against the next behaviour's demo
    for arm in ("learned", "goal", "blind"):
        m = summary[arm]
        assert m["columns"] == ["bowl", "jar", "half", "none"]
        for b in ("bowl", "jar", "half"):
            row = m["rows"][b]
            assert row["runs"] == 2 and sum(row["mean"]) == pytest.approx(1.0)
            assert all(0.0 <= lo <= v <= hi <= 1.0 for v, (lo, hi) in zip(row["mean"], row["ci95"]))
            runs = out / arm if arm != "blind" else out / "learned"  # blind reads back the learned run of its demo
            name = given[b] if arm == "blind" else b
            performed = [json.loads((runs / f"{name}_s{s}" / "metrics.json").read_text())["final_eval"]["behaviour_performed"]
                         for s in (0, 1)]
            expected = np.mean([[done.count(c) / len(done) for c in m["columns"]] for done in performed], axis=0)
            assert np.allclose(row["mean"], expected)
        assert (out / f"{arm}_confusion.png").stat().st_size > 0 and (out / f"{arm}_strips.png").stat().st_size > 0
    for b in ("bowl", "jar", "half"):  # each run trained once, against the demo its folder names
        assert Path(load_config(out / "learned" / f"{b}_s0" / "config.yaml").rl.demo) == Path(demos[b])
        assert summary["blind"]["rows"][b]["mean"] == summary["learned"]["rows"][given[b]]["mean"]
    assert load_config(out / "goal" / "half_s0" / "config.yaml").rl.reward == "goal"
    assert not (out / "blind").exists()


@pytest.mark.slow
def test_the_demos_arrangement_films_the_robot_where_the_demo_stood(tiny_family, tmp_path):
    pipe, demos = tiny_family
    out = tmp_path / "swap"
    command = [sys.executable, str(SWAP), "--out", str(out), "--pipeline", str(pipe), "--seeds", "0", "--steps", "64",
               "--arm", "blind", "--arrangement", "demo", *[f"--demo={b}={p}" for b, p in demos.items()]]
    subprocess.run(command, check=True)
    stopped = out / "learned" / "jar_s0"  # as if stopped before its first checkpoint: its config and marks, nothing else
    for f in stopped.iterdir():
        if f.name != "config.yaml" and not f.name.startswith(".tcn-robot"):
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    subprocess.run(command, check=True)  # resumes it from 0
    assert (stopped / "metrics.json").is_file() and (stopped / "checkpoints" / "last.zip").is_file()
    summary = json.loads((out / "summary.json").read_text())
    env = PourEnv(load_config(pipe / "config.yaml").env)
    for b, demo in demos.items():  # the bowl's side in the demo's scene, rebuilt from its seed
        env.reset(seed=load_episode(demo).meta["seed"])
        assert summary["bowl_side"][b] == np.sign(env.world.bowl_pos[1])
    env.close()
    for b, demo in demos.items():  # blind: the next behaviour's demo in its scene, trained as that behaviour's learned run
        run = load_config(out / "learned" / f"{b}_s0" / "config.yaml")
        assert Path(run.rl.demo) == Path(demo) and run.env.bowl_side == summary["bowl_side"][b]


@pytest.mark.slow
def test_the_reward_choice_counts_each_demos_scenes_by_arrangement(tiny_family):
    pipe, demos = tiny_family
    out = subprocess.run([sys.executable, str(BENCHMARKS / "reward_choice.py"), "--config", str(pipe / "config.yaml"),
                          "--heldout", str(pipe / "data_heldout"), "--checkpoint", f"tiny={pipe / 'tcn' / 'checkpoints' / 'best.pt'}",
                          "--scenes", "2", *[f"--demo={b}={p}" for b, p in demos.items()]],
                         check=True, capture_output=True, text=True).stdout
    header = ("| embedding | demo | arrangement | bowl | jar | half | upright bowl | upright jar | spilled, bowl | spilled, jar "
              "| past bowl | past jar | still |")
    assert header in out
    rows = [r for r in (line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| tiny | "))
            if r[2].strip() in ("as the demo", "mirrored")]
    for b in demos:  # each demo's two scenes, each counted once, as the demo's arrangement or mirrored
        assert sum(int(c) for r in rows if r[1].strip() == b for c in r[3:]) == 2
    apart = [line for line in out.splitlines() if line.startswith("| tiny | bowl / half |")]  # the one pair sharing a receptacle
    assert len(apart) == 1
    mean, low, high = map(float, apart[0].split("|")[3].replace("[", " ").replace("]", " ").replace(",", " ").split())
    assert 0.0 <= low <= mean <= high


def test_end_states_apart_is_the_last_frames_cosine_distance_over_the_first_performances_course():
    spec = importlib.util.spec_from_file_location("reward_choice", BENCHMARKS / "reward_choice.py")
    choice = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(choice)
    whole = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]])  # from (1, 0) to (0, 1): a course of cosine distance 1
    half = np.array([[1.0, 0.0], [1.0, 1.0]])  # ends at 45 degrees: cosine distance 1 - cos(45) from the whole's end
    assert choice.end_states_apart(whole, half) == pytest.approx(1 - np.sqrt(0.5))
    assert choice.end_states_apart(whole, whole) == pytest.approx(0.0)


def test_the_reward_choice_holds_the_cup_over_each_receptacle_full_after_a_spill_or_tipped_past_it():
    spec = importlib.util.spec_from_file_location("reward_choice", BENCHMARKS / "reward_choice.py")
    choice = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(choice)
    env = PourEnv({**FAMILY, "physics_hz": 120.0, "substeps": 6, "image_size": 16, "num_particles": 20}, render_mode="rgb_array")
    for receptacle in ("bowl", "jar"):
        for spill in (False, True):
            frames, done = choice.held_over(env, 3, receptacle, spill)
            m = env.measurement
            assert frames.shape == (env.cfg.episode_steps + 1, 16, 16, 3) and done == "none"
            assert m.in_cup == (0.0 if spill else 1.0) and m.spilled == (1.0 if spill else 0.0)  # all poured out, or none
            assert abs(m.tilt) < 0.05 and np.linalg.norm(m.cup_center - env.world.pour_point(receptacle)) < 0.03  # upright, over it
        frames, done = choice.poured_past(env, 3, receptacle)
        m, (pos, radius, _) = env.measurement, env.world.receptacles[receptacle]
        assert frames.shape == (env.cfg.episode_steps + 1, 16, 16, 3) and done == "none"
        assert m.in_cup == 0.0 and m.spilled == 1.0 and m.tilt > 1.5  # poured out onto the table, the cup still tipped
        beyond = env.world.particle_positions()[:, 0] - pos[0]  # the pour is past the receptacle, on the cameras' side
        assert radius < np.median(beyond) < radius + 0.12 and m.cup_center[0] > env.world.pour_point(receptacle)[0]
    env.close()


def test_the_swap_test_refuses_a_row_the_scene_does_not_have_before_writing(tmp_path):
    from tcn_robot.config import save_config

    pipe = tmp_path / "pipe"
    pipe.mkdir()
    save_config(load_config("family"), pipe)
    done = subprocess.run([sys.executable, str(SWAP), "--out", str(tmp_path / "swap"), "--pipeline", str(pipe),
                           "--row", "jar", "--row", "pour"], capture_output=True, text=True)
    assert done.returncode == 2 and "--row pour" in done.stderr and "bowl, jar, half" in done.stderr
    assert not (tmp_path / "swap").exists()
