"""Worker processes (recording workers, SubprocVecEnv envs) that stop cleanly with their parent.

Ctrl-C reaches every process of the terminal's process group. Workers ignore it and leave the
parent to stop them, so an interrupt prints one line (the parent's) instead of a traceback per
process; a worker whose parent died (SIGKILL) stops by itself at its next ``parent_alive`` check.
"""
from __future__ import annotations

import multiprocessing
import signal


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
