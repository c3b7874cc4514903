"""The tcn-robot command, the config system and packaging."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, packaged_sources

from tcn_robot.cli import main, parse
from tcn_robot.config import load_config, parse_mix
from tcn_robot.video import read_video


def test_console_script_help_lists_the_stages():
    script = Path(sys.executable).with_name("tcn-robot")  # the console script of this interpreter
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True).stdout
    assert "pipeline" in out


def test_building_the_command_line_imports_nothing_heavy():
    """--help and argument errors answer at once: the parser needs none of the libraries the stages use."""
    code = ("import sys, tcn_robot.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('torch', 'pybullet', 'gymnasium', 'omegaconf', 'stable_baselines3', 'matplotlib', 'cv2', 'kornia', "
            "'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout
    assert out.strip() == "[]", out


TINY_PIPELINE = ["--config", "smoke", "train.steps=4", "train.val_every=2", "train.checkpoint_every=2", "rl.steps=128",
                 "rl.n_envs=1", "rl.eval_every=128"]  # CI's smoke config, smaller still


def test_pipeline_writes_every_stage_and_resumes(tmp_path):
    out = tmp_path / "run"
    rc = main(["pipeline", "--out", str(out), *TINY_PIPELINE])
    assert rc == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["env"]["num_particles"] == 10 and saved["pipeline"]["video_size"] == 48
    metrics = json.loads((out / "metrics.json").read_text())["demo"]
    frames = read_video(out / "demo" / "multiview.mp4")
    assert frames.shape == (101, 48, 48 * 3, 3) == (metrics["frames"], 48, 48 * metrics["views"], 3)
    assert 0.0 <= metrics["fraction_in_bowl"] <= 1.0
    stages = json.loads((out / "metrics.json").read_text())
    assert stages["record"]["episodes"] == 4 and stages["train_tcn"]["steps"] == 4
    assert set(stages["evaluate"]) == {"TCN", "random init", "pixels 16x16"}
    assert stages["train_rl"]["steps"] == 128 and stages["train_rl"]["reward"] == "tcn"
    assert len(stages["replay"]["episodes"]) == 1
    report = (out / "report.md").read_text()
    for link in ("demo/multiview.mp4", "evaluate/report.md", "rl/eval_curve.png", "replay/episode_0.mp4", "replay/episode_0_strip.png"):
        assert f"({link})" in report and (out / link).exists(), link
    assert report.splitlines()[2].startswith("**The policy put ") and set(stages["stages"]) == {
        "human-proxy demonstration video", "record the dataset", "record held-out episodes", "train the TCN",
        "evaluate the TCN and the baselines", "train a policy on the learned reward", "replay the policy"}
    assert all(s["wall_seconds"] > 0 and s["cpu_seconds"] > 0 for s in stages["stages"].values())
    ckpt = (out / "tcn" / "checkpoints" / "last.pt").stat().st_mtime_ns
    assert main(["pipeline", "--out", str(out), *TINY_PIPELINE]) == 0  # finished stages are kept
    assert (out / "tcn" / "checkpoints" / "last.pt").stat().st_mtime_ns == ckpt
    assert json.loads((out / "metrics.json").read_text())["record"]["recorded_now"] == 0


def test_pipeline_seed_sets_the_seed_of_every_stage(tmp_path, monkeypatch):
    import tcn_robot.pipeline

    seen = []
    monkeypatch.setattr(tcn_robot.pipeline, "run_pipeline", lambda cfg, out, overwrite: seen.append(cfg))
    assert main(["pipeline", "--out", str(tmp_path / "a"), "--seed", "3", "rl.seed=7"]) == 0
    assert main(["pipeline", "--out", str(tmp_path / "b")]) == 0
    seeded, default = seen
    assert (seeded.pipeline.seed, seeded.record.seed, seeded.train.seed, seeded.rl.seed) == (3, 3, 3, 7)  # an override wins
    assert seeded.record.heldout_seed == default.record.heldout_seed + 3
    assert (default.pipeline.seed, default.record.seed, default.train.seed, default.rl.seed) == (0, 0, 0, 0)


def test_a_ctrl_c_that_python_wrapped_in_another_error_prints_one_line(monkeypatch, capsys):
    """A KeyboardInterrupt landing in a class body's __set_name__ (as while torch imports) reaches the
    command as a RuntimeError caused by it; any other error still propagates."""
    import tcn_robot.cli as cli

    def wrapped(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise RuntimeError("Error calling __set_name__") from e

    monkeypatch.setattr(cli, "_pipeline", wrapped)
    assert main(["pipeline", "--out", "x"]) == 130
    assert capsys.readouterr().err.strip() == "tcn-robot pipeline: interrupted"
    monkeypatch.setattr(cli, "_pipeline", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["pipeline", "--out", "x"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("env.num_partcles=3", "unknown key 'env.num_partcles'"),
        ("pipline.seed=1", "unknown key 'pipline'"),
        ("env.num_particles=lots", "env.num_particles"),
        ("seed", "not of the form key=value"),
        ("reward.window=-1", "reward.window must be between 0 and"),
    ],
)
def test_bad_overrides_exit_2_with_one_line_naming_the_key(tmp_path, capsys, override, message):
    assert main(["pipeline", "--out", str(tmp_path / "run"), override]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists(), "nothing is written when the config is bad"


def test_bad_config_files_name_the_file(tmp_path, capsys):
    missing = tmp_path / "missing.yaml"
    assert main(["pipeline", "--out", str(tmp_path / "r"), "--config", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("env:\n  episode_steps: 10\n  cameras_x: []\n")
    assert main(["pipeline", "--out", str(tmp_path / "r"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "env.cameras_x" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("env: [unclosed\n")
    assert main(["pipeline", "--out", str(tmp_path / "r"), "--config", str(broken)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_a_config_includes_another_and_overrides_it(tmp_path, capsys):
    from omegaconf import OmegaConf

    fam = load_config("family")
    quick = load_config(None, ["env.scene=bowl_jar", "env.action_axes=[x,y,z,tilt]", "env.y_limits=[-0.2,0.2]",
                               "env.table_friction=5.0", "env.table_rolling_friction=0.3", "record.episodes=180",
                               "record.behaviours=bowl=1,jar=1,half=1", "record.heldout_episodes=30"])
    assert [c.yaw for c in fam.env.cameras] == [(80.0, 100.0), (60.0, 80.0), (100.0, 120.0)]  # its own rig
    quick.env.cameras = fam.env.cameras
    assert OmegaConf.structured(fam) == OmegaConf.structured(quick)  # family.yaml: the quickstart and its differences
    (tmp_path / "mine.yaml").write_text("include: family\ntrain:\n  steps: 7\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "again.yaml").write_text("include: ../mine.yaml\nrl:\n  steps: 99\n")
    cfg = load_config(tmp_path / "sub" / "again.yaml")
    assert cfg.train.steps == 7 and cfg.rl.steps == 99 and cfg.env.scene == "bowl_jar"
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    (tmp_path / "c.yaml").write_text("include: nowhere.yaml\n")
    for name, message in (("a.yaml", "includes"), ("c.yaml", "included by")):
        assert main(["pipeline", "--out", str(tmp_path / "r"), "--config", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_packaged_default_is_the_quickstart():
    cfg = load_config()
    assert cfg.env.num_particles == 40 and len(cfg.env.cameras) == 3


def test_the_unpaired_recipe_is_the_quickstarts_in_the_default_worlds_physics():
    cfg, quick, world = load_config("unpaired"), load_config(), load_config("table1")
    mix = parse_mix(cfg.record.demonstrators)
    assert "paired" not in mix and mix["human"] > 0 and mix["robot"] > 0
    assert (cfg.env.physics_hz, cfg.env.substeps) == (world.env.physics_hz, world.env.substeps) != (quick.env.physics_hz, quick.env.substeps)
    assert cfg.tcn == quick.tcn and cfg.rl == quick.rl and cfg.reward == quick.reward
    assert cfg.record.heldout_episodes == world.record.heldout_episodes


def test_the_wheel_holds_every_module_and_packaged_config_at_its_installed_path(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("tcn_robot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"tcn_robot/{name}" for name in packaged_sources()}
    assert any(n.startswith("tcn_robot/train/") for n in expected) and "tcn_robot/configs/quickstart.yaml" in expected
    assert expected <= names, sorted(expected - names)
    assert not any(n.startswith(("envs/", "configs/", "tests/")) for n in names), "only the tcn_robot package is installed"
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = "import tcn_robot.envs, tcn_robot.train.tcn, tcn_robot.config as c; print(tcn_robot.envs.__file__); print(c.packaged_config_path())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)},
                         capture_output=True, text=True, check=True).stdout
    assert all(line.startswith(str(site)) for line in out.split())


def test_overrides_may_sit_between_and_after_flags_in_order():
    args = parse(["train-rl", "--out", "r", "rl.seed=3", "--steps", "5", "rl.ppo.log_std_init=-1.0", "rl.seed=4"])
    assert args.steps == 5 and args.overrides == ["rl.seed=3", "rl.ppo.log_std_init=-1.0", "rl.seed=4"]


@pytest.mark.parametrize("argv", [["train-rl", "--out", "r", "rl.seed=1", "--steps", "5", "stray"],
                                  ["train-rl", "--out", "r", "--steps", "5", "--no-such-flag"],
                                  ["inspect", "d", "a.b=1"]])
def test_what_is_neither_a_flag_nor_an_override_is_an_argparse_error(argv, capsys):
    with pytest.raises(SystemExit) as e:
        parse(argv)
    assert e.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_record_heldout_records_the_configs_held_out_set(tmp_path):
    """`record --heldout` takes the held-out keys of the config (its flags set them), not the training set's."""
    out = tmp_path / "heldout"
    assert main(["record", "--config", "smoke", "--out", str(out), "--heldout", "--seed", "7", "env.episode_steps=10",
                 "record.heldout_demonstrators=human=1"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["seed"] == 7 and manifest["settings"]["demonstrators"] == {"human": 1.0}
    assert len(manifest["episodes"]) == load_config("smoke").record.heldout_episodes
