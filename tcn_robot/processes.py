"""Worker processes (recording workers, SubprocVecEnv envs) that stop cleanly with their parent.

Ctrl-C reaches every process of the terminal's process group. Workers ignore it and leave the
parent to stop them, so an interrupt prints one line (the parent's) instead of a traceback per
process; a worker whose parent died (SIGKILL) stops by itself at its next ``parent_alive`` check.
"""
from __future__ import annotations

import multiprocessing
import signal


_requested = False  # a Ctrl-C or SIGTERM reached this process through ``interrupt``


def interrupt(signum, frame) -> None:
    """The CLI's handler of SIGINT and SIGTERM: remembers the request, then interrupts as Ctrl-C does.
    An import that swallows the KeyboardInterrupt (Python wraps one that lands in a class body's
    ``__set_name__`` in a RuntimeError, which a library's ``except Exception`` may catch) leaves the
    request for the next ``StopRequest`` to honour instead of losing it."""
    global _requested
    _requested = True
    raise KeyboardInterrupt


def forget_interrupts() -> None:
    """Start a command with no interrupt pending (``main`` may run several times in one process)."""
    global _requested
    _requested = False


def in_child() -> bool:
    return multiprocessing.parent_process() is not None


def leave_interrupts_to_parent() -> None:
    """In a child process, ignore SIGINT; in the main process, do nothing."""
    if in_child():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def parent_alive() -> bool:
    """False once the process that started this one has exited (always True in the main process)."""
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


class StopRequest:
    """Within the block, Ctrl-C (SIGINT) and SIGTERM set ``requested`` instead of interrupting, so that
    a training loop stops between two steps: it checks ``requested``, saves a checkpoint and raises
    ``KeyboardInterrupt``; a second signal interrupts at once. Outside the main thread, a no-op."""

    def __init__(self) -> None:
        self.requested = False
        self._saved: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "StopRequest":
        if _requested:  # an interrupt that arrived earlier and was swallowed on the way here
            raise KeyboardInterrupt
        try:
            self._saved = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread
            self._saved = {}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._saved.items():
            signal.signal(s, handler)
