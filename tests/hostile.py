"""What every hostile probe shares: hashing what existed before, running a command the way a user
does and asserting that it failed in one line, and the small inputs the probes start from."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tcn_robot.cli import main
from tcn_robot.runs import LOCK

SCRIPT = str(Path(sys.executable).with_name("tcn-robot"))
WORLD = ["env.episode_steps=20", "env.num_particles=10", "env.image_size=32"]
TCN = ["model.image_size=32", "model.width=8", "model.head_channels=16", "model.hidden=32", "tcn.sequences_per_batch=2",
       "tcn.frames_per_sequence=4", "train.val_episodes=1", "train.val_every=2", "train.checkpoint_every=2"]
RL = [*WORLD, "rl.eval_every=64", "rl.eval_episodes=1", "rl.ppo.n_steps=32", "rl.ppo.batch_size=32", "rl.ppo.n_epochs=1"]


def snapshot(*folders: Path) -> dict:
    """sha256 of every file under ``folders`` (symlinks not followed), less the commands' lock files, which
    each command rewrites with its own process id and start time."""
    out = {}
    for d in folders:
        for root, _, files in os.walk(d):
            for name in files:
                f = Path(root) / name
                if f.is_file() and not f.is_symlink() and not name.startswith(LOCK):
                    out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def nothing_lost(before: dict) -> None:
    """Every file of ``before`` (a ``snapshot``) still holds what it held."""
    after = {f: hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in before if Path(f).is_file()}
    lost = sorted(set(before) - set(after))
    changed = sorted(f for f in after if after[f] != before[f])
    assert not lost and not changed, f"lost {lost[:3]}, changed {changed[:3]}"


def error_lines(err: str) -> list[str]:
    """The lines of stderr besides progress bars and warnings."""
    return [line for line in err.replace("\r", "\n").splitlines()
            if line.strip() and "%|" not in line and ": warning: " not in line]


def fails_cleanly(capsys, argv: list[str], *names: str) -> str:
    """Run the command in-process: exit 2 and, besides progress bars and one-line warnings, one line on
    stderr, the error, naming each of ``names``; no traceback."""
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err
    lines = error_lines(err)
    assert rc == 2, (rc, err)
    assert len(lines) == 1 and lines[0].startswith(f"tcn-robot {argv[0]}: error: ") and "Traceback" not in err, err
    for n in names:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]


def run_cli(argv: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """The installed command in its own process (for what in-process calls cannot show: signals, limits)."""
    return subprocess.run([SCRIPT, *argv], capture_output=True, text=True, timeout=timeout, **kw)


def fails_cleanly_in_process(result: subprocess.CompletedProcess, stage: str, *names: str) -> str:
    """``run_cli``'s result: exit 2, one error line naming ``names``, no traceback, no signal death."""
    lines = error_lines(result.stderr)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith(f"tcn-robot {stage}: error: ") and "Traceback" not in result.stderr, result.stderr[-2000:]
    for n in names:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


class Payload:
    """Unpickling this creates the file ``marker``: what a planted checkpoint would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))
