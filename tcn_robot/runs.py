"""Output folders: the one place that names their files, and the rules of who may write where.

A command writes only into an output it owns. ``check_output`` decides, writing nothing, whether
a command may write into a folder: a new or empty folder (it becomes the command's own), or one
that the same kind of command made, when it is resumed or the user passes ``--overwrite``. A
folder made by another command, a non-empty folder tcn-robot did not make, and a file are
refused. After checking every input, the command calls ``claim_output``, which creates the folder
and marks it (``.tcn-robot.json``: which command made it and from which inputs).

Layout of a run folder (every training command): ``config.yaml`` (the resolved config),
``checkpoints/`` (``last`` and ``best``), ``tb/`` (TensorBoard), ``metrics.json``; evaluation and
replay folders hold ``metrics.json`` and ``report.md`` or videos.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from . import UserError
from .io import write_json

MARK = ".tcn-robot.json"
CONFIG = "config.yaml"
METRICS = "metrics.json"
REPORT = "report.md"
TENSORBOARD = "tb"
EVAL_HISTORY = "eval.json"  # train-rl: every evaluation so far
MANIFEST = "manifest.json"  # a dataset's list of episodes

# the commands that own an output folder, and those whose folder is continued by running them again
KINDS = ("record", "import-videos", "train-tcn", "pretrain", "evaluate", "train-rl", "replay", "pipeline")
RESUMABLE = ("record", "import-videos", "train-tcn", "pretrain", "train-rl", "pipeline")


def checkpoint(run: str | Path, name: str) -> Path:
    """``run/checkpoints/name``: ``last.pt`` / ``best.pt`` (an embedding network), ``last.zip`` / ``best.zip`` (a policy)."""
    return Path(run) / "checkpoints" / name


def checkpoint_spec(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` -> (NAME, PATH); ``PATH`` -> ("", PATH). A path may hold ``=`` itself
    (``sweep/lr=1e-3/last.pt``): the spec is a bare path when it names an existing file or when
    what precedes the first ``=`` contains a path separator."""
    name, sep, path = spec.partition("=")
    if not sep or Path(spec).is_file() or "/" in name or os.sep in name:
        return "", Path(spec)
    return name, Path(path)


def output_kind(path: str | Path) -> str | None:
    """The command that made the folder ``path`` (from its mark; a dataset of an earlier tcn-robot is
    recognized by its manifest), or None."""
    path = Path(path)
    try:
        return str(json.loads((path / MARK).read_text())["kind"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if (path / MANIFEST).is_file():
        try:
            settings = json.loads((path / MANIFEST).read_text()).get("settings", {})
        except (OSError, ValueError, AttributeError):
            return None
        return "import-videos" if "imported_from" in settings else "record"
    return None


def output_inputs(path: str | Path) -> dict:
    """The inputs recorded in a folder's mark (``claim_output(..., inputs=)``), or {}."""
    try:
        return dict(json.loads((Path(path) / MARK).read_text()).get("inputs", {}))
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def _writable(path: Path) -> bool:
    """Whether a file can be created in the folder ``path`` or, if it does not exist, in its nearest
    existing parent (tried for real: permission bits do not stop root, a read-only file system does)."""
    folder = path
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        return False
    probe = folder / f".tcn-robot-probe-{os.getpid()}"
    try:
        probe.touch()
        probe.unlink()
        return True
    except OSError:
        return False


def check_output(path: str | Path, kind: str, resume: bool = False, overwrite: bool = False) -> str:
    """Whether the command ``kind`` may write into the folder ``path``, writing nothing.

    Returns ``"new"`` (absent or empty), ``"resume"`` (its own kind, resumed) or ``"overwrite"``
    (its own kind, ``--overwrite``). Raises ``UserError`` naming the folder and the problem.
    """
    assert kind in KINDS, kind
    path = Path(path)
    flag = "--overwrite" if kind not in RESUMABLE else ("--resume or --overwrite" if kind in ("train-tcn", "pretrain", "train-rl")
                                                        else "--overwrite")
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: exists and is not a folder; choose another --out")
    if not _writable(path):
        raise UserError(f"{path}: cannot write there (read-only or no permission); choose another --out")
    if not path.exists() or not any(path.iterdir()):
        if resume and kind in ("train-tcn", "pretrain", "train-rl"):
            raise UserError(f"--resume: {path} holds no run to resume")
        owner = next((p for p in path.parents if output_kind(p) not in (None, "pipeline")), None)
        if owner is not None:
            raise UserError(f"{path}: inside {owner}, the output of `tcn-robot {output_kind(owner)}`; choose another --out")
        return "new"
    made_by = output_kind(path)
    if made_by is None:
        raise UserError(f"{path}: not empty and not made by tcn-robot; choose another --out")
    if made_by != kind:
        raise UserError(f"{path}: holds the output of `tcn-robot {made_by}`, which {kind} may not write into; choose another --out")
    if overwrite:
        return "overwrite"
    if resume or kind in ("record", "import-videos", "pipeline"):  # these resume by running the same command again
        return "resume"
    raise UserError(f"{path}: already holds the output of an earlier `tcn-robot {kind}`; pass {flag}, or choose another --out")


def claim_output(path: str | Path, kind: str, mode: str, inputs: dict | None = None) -> Path:
    """Create (``new``), empty (``overwrite``) or keep (``resume``) the folder ``path`` and mark it as
    the output of ``kind`` made from ``inputs`` (paths and settings, to compare on resume)."""
    path = Path(path)
    if mode == "overwrite":
        for child in path.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    if mode != "resume" or not (path / MARK).exists():
        write_json(path / MARK, {"kind": kind, "inputs": inputs or {}})
    return path


def check_file_output(path: str | Path, suffix: str, made_by: str, overwrite: bool = False) -> None:
    """A command that writes one file (``embed``): ``path`` must end in ``suffix``, lie outside every
    folder another command owns, and be new, or (with ``--overwrite``) a file this command made, as
    ``made_by(path)`` tells."""
    path = Path(path)
    if path.suffix != suffix:
        raise UserError(f"{path}: the output must be a {suffix} file")
    owner = next((p for p in path.parents if output_kind(p) is not None), None)
    if owner is not None:
        raise UserError(f"{path}: inside {owner}, the output of `tcn-robot {output_kind(owner)}`; write elsewhere")
    if path.is_dir():
        raise UserError(f"{path}: is a folder; name a {suffix} file")
    if path.exists() and not (overwrite and made_by(path)):
        raise UserError(f"{path}: exists" + ("" if overwrite else "; pass --overwrite to replace it")
                        + (" (and was not written by this command)" if overwrite else ""))
    if not _writable(path.parent):
        raise UserError(f"{path.parent}: cannot write there (read-only or no permission)")


def record_resume(path: str | Path, step: int, changes: dict) -> None:
    """Note in the folder's mark that the run was resumed at ``step`` with config ``changes``
    (``{key: [old, new]}``), so that the run's metrics can say what changed mid-run."""
    mark = Path(path) / MARK
    data = json.loads(mark.read_text())
    data.setdefault("resumes", []).append({"step": int(step), "changed": changes})
    write_json(mark, data)


def resumes(path: str | Path) -> list[dict]:
    """The resumes noted by ``record_resume``, oldest first."""
    try:
        return list(json.loads((Path(path) / MARK).read_text()).get("resumes", []))
    except (OSError, ValueError, AttributeError):
        return []
