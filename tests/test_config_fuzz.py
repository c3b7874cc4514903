"""Every value the config schema accepts runs; every other value fails in one line naming its key.

For ``record``, ``train-tcn`` and ``train-rl``, each numeric key that the command reads is set to 0,
-1 and a huge value, and each string key to a word no setting knows; the command, sized tiny,
either completes or exits 2 with one line, and never raises a traceback.
"""
import pytest

from tcn_robot import UserError
from tcn_robot.cli import main
from tcn_robot.config import flatten, load_config
from tcn_robot.data.record import record_dataset
from tcn_robot.envs import make_pour_config

TINY_WORLD = ["env.episode_steps=4", "env.num_particles=2", "env.settle_substeps=2"]
SECTIONS = {"record": ("env.", "record."), "train-tcn": ("model.", "augment.", "train.", "tcn."), "train-rl": ("env.", "rl.", "reward.")}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_data")
    record_dataset(make_pour_config(episode_steps=8, num_particles=4), root, 4, 2, 16, 0, "human=0.5,robot=0.5")
    return root


def base_args(command: str, out, data) -> list[str]:
    if command == "record":
        return ["record", "--out", str(out), "--episodes", "1", "--views", "1", "--image-size", "16", *TINY_WORLD]
    if command == "train-tcn":
        return ["train-tcn", "--data", str(data), "--out", str(out), "--steps", "2", "model.image_size=16", "model.width=4",
                "model.head_channels=4", "model.hidden=8", "tcn.sequences_per_batch=1", "tcn.frames_per_sequence=2",
                "train.val_episodes=1", "train.val_every=2", "train.checkpoint_every=2", "train.device=cpu"]
    return ["train-rl", "--out", str(out), "--reward", "tcn", "--encoder", "pixels", "--demo", str(data / "ep00000"), "--steps", "8",
            "--n-envs", "1", *TINY_WORLD, "env.image_size=16", "rl.eval_every=8", "rl.eval_episodes=1", "rl.ppo.n_steps=8",
            "rl.ppo.batch_size=8", "rl.ppo.n_epochs=1", "rl.sac.learning_starts=0", "rl.sac.batch_size=4"]


def cases(command: str) -> list[str]:
    """``key=value`` overrides: 0, -1 and a huge value for every number, an unknown word for every string."""
    out = []
    for key, value in flatten(load_config()).items():
        if not key.startswith(SECTIONS[command]) or isinstance(value, (bool, list, tuple)):
            continue
        if isinstance(value, str):
            out.append(f"{key}=no_such_setting")
        elif isinstance(value, int):
            out += [f"{key}=0", f"{key}=-1", f"{key}={10**12}"]
        else:
            out += [f"{key}=0.0", f"{key}=-1.0", f"{key}=1e12"]
    return out


@pytest.mark.parametrize("command", list(SECTIONS))
def test_every_value_runs_or_fails_in_one_line(command, data, tmp_path, capsys):
    overrides = cases(command)
    assert len(overrides) > 20
    ran = 0
    for i, override in enumerate(overrides):
        argv = base_args(command, tmp_path / f"out{i}", data) + [override]
        key = override.split("=")[0]
        try:
            load_config(None, [a for a in argv if "=" in a and not a.startswith("-")])
            accepted = True
        except UserError as e:
            accepted = False
            assert key in str(e), (override, str(e))
        capsys.readouterr()
        rc = main(argv)
        err = capsys.readouterr().err
        lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]
        assert "Traceback" not in err, (override, err)
        if accepted and rc == 0:
            ran += 1
            continue
        assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"tcn-robot {command}: error: "), (override, rc, err)
    assert ran >= 5, "the fuzz should exercise accepted values for real"
