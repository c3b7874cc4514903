"""Files on disk: the one way tcn-robot writes a file (atomically: a killed or failed write never
leaves a half-written file under the final name), reads JSON it did not write itself, names its
temporaries, and reports a full disk.

Every temporary file or folder is named ``.{name}.tcn-tmp-{pid}-{n}{suffix}`` beside its final
path, so that a later run recognizes the leftovers of a process that died (``clean_stale_temporaries``).
"""
from __future__ import annotations

import contextlib
import errno
import itertools
import json
import math
import os
import resource
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import UserError

TEMP_TAG = ".tcn-tmp-"
_counter = itertools.count()
# below this much free space after a failed write, the write failed because the disk is full (libraries such as
# torch's zip writer and OpenCV report the OS error in their own words, or not at all)
FULL = 1 << 20


def temp_path(path: str | Path) -> Path:
    """A fresh temporary name beside ``path`` (same suffix, so that libraries keep it)."""
    path = Path(path)
    return path.with_name(f".{path.name}{TEMP_TAG}{os.getpid()}-{next(_counter)}{path.suffix}")


def temp_owner(name: str) -> int | None:
    """The process id a temporary's name carries, or None for any other name."""
    if not name.startswith(".") or TEMP_TAG not in name:
        return None
    tail = name.rsplit(TEMP_TAG, 1)[1].split("-", 1)[0]
    return int(tail) if tail.isdigit() else None


def alive(pid: int) -> bool:
    """Whether the process ``pid`` exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:  # another user's process
        return True
    except (ProcessLookupError, OverflowError):
        return False
    return True


def clean_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries under ``folder`` (any depth) whose writing process is gone; returns them."""
    removed = []
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            pid = temp_owner(name)
            if pid is not None and pid != os.getpid() and not alive(pid):
                p = Path(root) / name
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
                removed.append(p)
        dirs[:] = [d for d in dirs if temp_owner(d) is None]
    return removed


def out_of_space(path: str | Path, needed: int | None = None) -> UserError:
    """The one-line error of a write to ``path`` that the full disk refused."""
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    need = f"; it needed {_size(needed)}" if needed else ""
    return UserError(f"{path}: no space left on the device ({_size(free)} free{need}); free some space and run the command again")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} kB"


def is_disk_full(e: BaseException, folder: Path) -> bool:
    """Whether the failed write ``e`` into ``folder`` failed for want of space."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if not isinstance(e, (OSError, RuntimeError, ValueError)):
        return False
    try:
        return shutil.disk_usage(folder).free < FULL
    except OSError:
        return False


def describe_os_error(e: OSError) -> str:
    """One line for an error the operating system raised: the path or resource, and what to do."""
    where = f"{e.filename}: " if e.filename else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{where}no space left on the device; free some space and run the command again"
    if e.errno in (errno.EMFILE, errno.ENFILE):
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return f"{where}too many open files (this process may open {soft}); raise the limit (`ulimit -n 4096`) or use fewer workers"
    if e.errno == errno.ENOMEM:
        return f"{where}out of memory; free memory, or lower the batch, image size or number of workers"
    return f"{where}{e.strerror or e}"


FILES_BASE = 64  # open files a command needs besides its episodes and processes (libraries, logs, checkpoints)
FILES_PER_PROCESS = 16  # pipes and descriptors of one worker process


def ensure_open_files(needed: int, what: str) -> None:
    """Raise this process's limit of open files to its hard limit, and refuse in one line, before
    anything starts, when even that is below ``needed`` (``what`` needs them)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed and (hard == resource.RLIM_INFINITY or hard > soft):
        soft = hard if hard != resource.RLIM_INFINITY else max(needed, 4096)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft < needed:
        raise UserError(f"too many open files: {what} need about {needed} open files and this process may open {soft}; "
                        "raise the limit (`ulimit -n 4096`)")


class AtomicFile:
    """``with AtomicFile(path) as tmp:`` the block writes ``tmp`` (with any library); when it ends, the
    file is flushed to disk and renamed to ``path`` in one step. On an exception the temporary is
    removed, and a write that failed for want of space becomes one ``UserError`` naming ``path``.
    ``commit`` and ``abort`` do the same outside a ``with`` block (a video written frame by frame)."""

    def __init__(self, path: str | Path, needed: int | None = None) -> None:
        self.path = Path(path)
        check_path_encoding(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_path(self.path)
        self.needed = needed

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort(exc)

    def commit(self) -> Path:
        try:
            fd = os.open(self.tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(self.tmp, 0o644)
            os.replace(self.tmp, self.path)
        except BaseException as e:
            self.abort(e)
        return self.path

    def abort(self, exc: BaseException | None = None) -> None:
        """Remove the temporary; re-raise ``exc`` (as a one-line error when the disk is full)."""
        try:
            written = self.tmp.stat().st_size if self.tmp.is_file() else 0
        except OSError:
            written = 0
        full = exc is not None and is_disk_full(exc, self.path.parent)
        self.tmp.unlink(missing_ok=True)
        if exc is None:
            return
        if full:
            raise out_of_space(self.path, self.needed or written or None) from None
        raise exc


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with AtomicFile(path, needed=len(data)) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN or infinity: "not measured" is null
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    return x


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` (numpy values allowed; NaN and infinities as null) as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


MAX_JSON_BYTES = 64 << 20  # no file tcn-robot writes comes near this


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``; raises ``ValueError`` saying what is wrong (not UTF-8, not JSON, nested too
    deep, too large) and ``OSError`` when it cannot be read. NaN and infinities are refused."""
    path = Path(path)
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"larger than {MAX_JSON_BYTES >> 20} MB")
    try:
        return json.loads(path.read_bytes().decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg}, line {e.lineno})") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _no_constants(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def check_path_encoding(path: str | Path) -> None:
    """Refuse a path that is not valid UTF-8 (a name the C libraries underneath, OpenCV's video writer among
    them, cannot take), in one line naming it."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        raise UserError(f"{shown}: the path is not valid UTF-8; choose another name") from None


@contextlib.contextmanager
def silenced(*fds: int):
    """Send file descriptors ``fds`` (1: stdout, 2: stderr) to /dev/null for the block: for what C code
    prints there directly (pybullet's banner, FFmpeg's encoder probes). Exceptions still propagate."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    try:
        with open(os.devnull, "wb") as null:
            for fd in fds:
                os.dup2(null.fileno(), fd)
        yield
    finally:
        for fd, copy in zip(fds, saved):
            os.dup2(copy, fd)
            os.close(copy)
