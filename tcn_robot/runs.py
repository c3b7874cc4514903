"""Output folders: the one place that names their files, and the rules of who may write where.

A command writes only into an output it owns. ``check_output`` decides, writing nothing, whether
a command may write into a folder: a new or empty folder (it becomes the command's own), or one
that the same kind of command made, when it is resumed or the user passes ``--overwrite``. A
folder made by another command, a non-empty folder tcn-robot did not make, and a file are
refused. Every decision is taken on the resolved path (symlinks and ``..`` followed). After checking
every input, the command calls ``claim_output``, which creates the folder, locks it for the rest of
the command (``.tcn-robot.lock``: a second command into it is refused, naming the holder; the lock
of a process that died is free) and marks it (``.tcn-robot.json``: which command made it and from
which inputs).

Every file a command writes is named here. A run folder (every training command) holds
``config.yaml`` (the resolved config), ``checkpoints/`` (``last`` and ``best``), ``tb/``
(TensorBoard), ``metrics.json``; train-rl adds ``eval.json`` and ``eval_curve.png``; evaluation and
replay folders hold ``metrics.json`` and ``report.md`` or videos; the pipeline's folder holds one
folder per stage (``PIPELINE``).
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from . import UserError
from .io import TEMP_TAG, check_path_encoding, clean_stale_temporaries, read_json, write_json

OUTPUT_MARK = ".tcn-robot.json"  # which command made a folder, from which inputs
CONFIG = "config.yaml"
METRICS = "metrics.json"
REPORT = "report.md"
TENSORBOARD = "tb"
LAST_WEIGHTS, BEST_WEIGHTS = "last.pt", "best.pt"  # train-tcn and pretrain checkpoints
LAST_POLICY, BEST_POLICY = "last.zip", "best.zip"  # train-rl checkpoints
EVAL_HISTORY = "eval.json"  # train-rl: every evaluation so far
EVAL_CURVE = "eval_curve.png"  # train-rl: the fraction poured over training
MANIFEST = "manifest.json"  # a dataset's list of episodes (data/episodes.py reads and writes it)


def replay_files(k: int) -> dict[str, str]:
    """The files ``replay`` writes for its episode ``k``: the views beside the demo, the reward curve, the frame strip."""
    return {"video": f"episode_{k}.mp4", "reward": f"episode_{k}.png", "strip": f"episode_{k}_strip.png"}


# the pipeline's folder: one sub-folder (or file) per stage
PIPELINE = {"demo_video": "demo/multiview.mp4", "data": "data", "heldout": "data_heldout", "tcn": "tcn",
            "evaluate": "evaluate", "rl": "rl", "replay": "replay"}

# the commands that own an output folder, and those whose folder is continued by running them again
KINDS = ("record", "import-videos", "train-tcn", "pretrain", "evaluate", "train-rl", "replay", "pipeline")
RESUMABLE = ("record", "import-videos", "train-tcn", "pretrain", "train-rl", "pipeline")


def checkpoint(run: str | Path, name: str) -> Path:
    """``run/checkpoints/name``: ``last.pt`` / ``best.pt`` (an embedding network), ``last.zip`` / ``best.zip`` (a policy)."""
    return Path(run) / "checkpoints" / name


def checkpoint_spec(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` -> (NAME, PATH); ``PATH`` -> ("", PATH) (of ``--checkpoint``, ``--novel-data``). A
    path may hold ``=`` itself (``sweep/lr=1e-3/last.pt``): the spec is a bare path when it names an
    existing file or folder or when what precedes the first ``=`` contains a path separator."""
    name, sep, path = spec.partition("=")
    if not sep or Path(spec).exists() or "/" in name or os.sep in name:
        return "", Path(spec)
    return name, Path(path)


def _mark(path: Path) -> dict:
    """The folder's mark as a dict, or {} when absent or damaged (wrong types, not JSON, nested too deep)."""
    try:
        data = read_json(Path(path) / OUTPUT_MARK)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        return {}
    return data


def output_kind(path: str | Path) -> str | None:
    """The command that made the folder ``path`` (from its mark; a dataset of an earlier tcn-robot is
    recognized by its manifest), or None."""
    path = Path(path)
    kind = _mark(path).get("kind")
    if kind is not None:
        return kind
    if (path / MANIFEST).is_file():
        try:
            manifest = read_json(path / MANIFEST)
        except (OSError, ValueError):
            return None
        settings = manifest.get("settings") if isinstance(manifest, dict) else None
        if not isinstance(settings, dict):
            return None
        return "import-videos" if "imported_from" in settings else "record"
    return None


def output_inputs(path: str | Path) -> dict:
    """The inputs recorded in a folder's mark (``claim_output(..., inputs=)``), or {}."""
    inputs = _mark(Path(path)).get("inputs", {})
    return dict(inputs) if isinstance(inputs, dict) else {}


def owner_of(path: str | Path, skip: tuple[str, ...] = ()) -> Path | None:
    """The nearest folder above ``path`` (resolved: symlinks and ``..`` followed) that a command made,
    other than the kinds ``skip``; None when there is none."""
    return next((p for p in Path(path).resolve().parents if output_kind(p) not in (None, *skip)), None)


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


def _ours(name: str) -> bool:
    """Files every output folder may hold besides its contents: the lock files and temporaries."""
    return name.startswith(LOCK) or TEMP_TAG in name


def _empty(path: Path) -> bool:
    return all(_ours(child.name) for child in path.iterdir())


def check_output(path: str | Path, kind: str, resume: bool = False, overwrite: bool = False) -> str:
    """Whether the command ``kind`` may write into the folder ``path``, writing nothing; decided on the
    resolved path (symlinks and ``..`` followed).

    Returns ``"new"`` (absent or empty), ``"resume"`` (its own kind, resumed) or ``"overwrite"``
    (its own kind, ``--overwrite``). Raises ``UserError`` naming the folder and the problem.
    """
    assert kind in KINDS, kind
    check_path_encoding(path)
    shown, path = Path(path), Path(path).resolve()
    flag = "--overwrite" if kind not in RESUMABLE else ("--resume or --overwrite" if kind in ("train-tcn", "pretrain", "train-rl")
                                                        else "--overwrite")
    if path.exists() and not path.is_dir():
        raise UserError(f"{shown}: exists and is not a folder; choose another --out")
    if not _writable(path):
        raise UserError(f"{shown}: cannot write there (read-only or no permission); choose another --out")
    if not path.exists() or _empty(path):
        if resume and kind in ("train-tcn", "pretrain", "train-rl"):
            raise UserError(f"--resume: {shown} holds no run to resume")
        owner = owner_of(path, skip=("pipeline",))
        if owner is not None:
            raise UserError(f"{shown}: inside {owner}, the output of `tcn-robot {output_kind(owner)}`; choose another --out")
        return "new"
    made_by = output_kind(path)
    if made_by is None:
        raise UserError(f"{shown}: not empty and not made by tcn-robot; choose another --out")
    if made_by != kind:
        raise UserError(f"{shown}: holds the output of `tcn-robot {made_by}`, which {kind} may not write into; choose another --out")
    if overwrite:
        return "overwrite"
    if resume or kind in ("record", "import-videos", "pipeline"):  # these resume by running the same command again
        return "resume"
    raise UserError(f"{shown}: already holds the output of an earlier `tcn-robot {kind}`; pass {flag}, or choose another --out")


def check_apart(out: str | Path, inputs: dict[str, str | Path]) -> None:
    """Refuse an output folder that is one of the command's inputs, lies inside one or holds one
    (``inputs``: flag -> path), decided on resolved paths."""
    real = Path(out).resolve()
    for flag, given in inputs.items():
        if not given:
            continue
        src = Path(given).resolve()
        if real == src or src in real.parents:
            raise UserError(f"{out}: lies inside the input {flag} {given}; choose an --out outside it")
        if real in src.parents:
            raise UserError(f"{out}: holds the input {flag} {given}; choose an --out that does not")


# ----------------------------------------------------------------- one writer per output
LOCK = ".tcn-robot.lock"
_held: dict[Path, list] = {}  # resolved folder -> the open lock files this process holds on it


def _holder() -> dict:
    return {"command": " ".join(["tcn-robot", *sys.argv[1:]]) if Path(sys.argv[0]).name == "tcn-robot" else " ".join(sys.argv),
            "pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}


def _describe(lock: Path) -> str:
    try:
        h = json.loads(lock.read_text())
        return f"`{h['command']}` (process {h['pid']} on {h['host']}, since {h['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _take(lock: Path, shared: bool):
    """The open lock file ``lock``, locked (shared or exclusive) without waiting; None when another
    process holds it. A lock dies with its process, so a dead holder's lock is free."""
    f = open(lock, "a+")
    try:
        fcntl.flock(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    if not shared:
        f.seek(0)
        f.truncate()
        f.write(json.dumps(_holder()))
        f.flush()
    return f


def lock_output(path: Path, shard: tuple[int, int] = (0, 1)) -> None:
    """Hold the folder ``path`` for this process until the command ends (``owns_outputs``); a second
    command into it is refused in one line naming the holder. The shards of one recording
    (``record --shard i/N``) share the folder and each holds its own part."""
    path = Path(path).resolve()
    if path in _held:
        return
    shared = shard[1] > 1
    main = _take(path / LOCK, shared)
    if main is None:
        shards = [s for s in path.glob(f"{LOCK}.shard-*") if _busy(s)]
        holders = ", ".join(_describe(s) for s in shards) if shards else _describe(path / LOCK)
        raise UserError(f"{path}: in use by {holders}; wait for it to finish or choose another --out")
    files = [main]
    if shared:
        part = path / f"{LOCK}.shard-{shard[0]}-of-{shard[1]}"
        f = _take(part, False)
        if f is None:
            main.close()
            raise UserError(f"{path}: shard {shard[0]}/{shard[1]} in use by {_describe(part)}; wait for it to finish")
        files.append(f)
    _held[path] = files


def _busy(lock: Path) -> bool:
    try:
        with open(lock, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def owns_outputs(command):
    """Decorator of a command's function: the output folders it locks are released when it returns
    (the kernel releases them when its process dies)."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        before = set(_held)
        try:
            return command(*args, **kwargs)
        finally:
            for path in set(_held) - before:
                for f in _held.pop(path):
                    f.close()
    return run


def claim_output(path: str | Path, kind: str, mode: str, inputs: dict | None = None, shard: tuple[int, int] = (0, 1)) -> Path:
    """Take the folder ``path`` for the command ``kind``: create it, lock it for the rest of the command
    (refused when another command holds it), check again under the lock that ``mode`` (what
    ``check_output`` decided) still holds, remove temporaries of processes that died, empty it
    (``overwrite``) and mark it as the output of ``kind`` made from ``inputs`` (paths, settings and
    digests, to compare on resume)."""
    shown, path = Path(path), Path(path).resolve()
    path.mkdir(parents=True, exist_ok=True)
    lock_output(path, shard)
    now = check_output(path, kind, resume=mode == "resume", overwrite=mode == "overwrite")
    if now != mode:
        raise UserError(f"{shown}: another command wrote into it while this one was starting; run this command again")
    clean_stale_temporaries(path)
    if mode == "overwrite":
        for child in path.iterdir():
            if _ours(child.name):
                continue
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    mark = _mark(path)
    if mode != "resume" or not mark:
        write_json(path / OUTPUT_MARK, {"kind": kind, "inputs": inputs or {}})
    return shown


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


def digest(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files (names and contents, hidden ones skipped)."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file()
                                                 and not any(part.startswith(".") for part in f.relative_to(path).parts))
    for f in files:
        h.update(f.relative_to(path).as_posix().encode() if f != path else b"")
        with open(f, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def pinned_inputs(files: dict[str, str]) -> dict[str, str]:
    """``{key: sha256}`` of the input files and folders ``files`` (config key -> path; empty paths and
    baseline names that are not paths skipped)."""
    return {key: digest(p) for key, p in files.items() if p and Path(p).exists()}


def changed_inputs(run: str | Path, now: dict[str, str]) -> list[str]:
    """The keys of the digests ``now`` that differ from those the run ``run`` recorded when it started."""
    then = output_inputs(run).get("digests", {})
    return [k for k, d in now.items() if isinstance(then, dict) and k in then and then[k] != d]


def check_pinned(run: str | Path, files: dict[str, str], accept: bool) -> dict[str, str]:
    """Compare the inputs ``files`` (config key -> path) with the digests the run ``run`` recorded when
    it started; raise ``UserError`` naming the first that changed, unless ``accept`` (then the new
    digests are returned, to record). Returns the current digests."""
    now = pinned_inputs(files)
    changed = changed_inputs(run, now)
    if changed and not accept:
        k = changed[0]
        raise UserError(f"{files[k]}: changed since {run} started ({k}); pass --accept-changed-inputs to use it as it is now")
    return now


def set_inputs(path: str | Path, inputs: dict) -> None:
    """Replace the inputs recorded in the folder's mark (after ``--accept-changed-inputs``)."""
    data = _mark(Path(path))
    data["inputs"] = inputs
    write_json(Path(path) / OUTPUT_MARK, data)


def record_resume(path: str | Path, step: int, changes: dict) -> None:
    """Note in the folder's mark that the run was resumed at ``step`` with config ``changes``
    (``{key: [old, new]}``), so that the run's metrics can say what changed mid-run."""
    data = _mark(Path(path))
    data["resumes"] = [*resumes(path), {"step": int(step), "changed": changes}]
    write_json(Path(path) / OUTPUT_MARK, data)


def resumes(path: str | Path) -> list[dict]:
    """The resumes noted by ``record_resume``, oldest first."""
    found = _mark(Path(path)).get("resumes", [])
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []
