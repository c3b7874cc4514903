"""pybullet, imported once for the whole world with its stdout noise silenced.

The C module prints a build-time banner when imported and ``argv[0]=`` when a client connects,
straight to file descriptor 1 or 2, where they would mix with a command's output. Every module of the
world takes ``p`` (and ``bullet_client``, ``pybullet_data``) from here, and ``connect`` opens a
client quietly.
"""
from __future__ import annotations

from ..io import silenced

with silenced(1, 2):
    import pybullet as p
    import pybullet_data
    from pybullet_utils import bullet_client

__all__ = ["bullet_client", "connect", "p", "pybullet_data"]


def connect() -> bullet_client.BulletClient:
    """A new Bullet client in DIRECT mode (no window, its own world)."""
    with silenced(1, 2):
        return bullet_client.BulletClient(connection_mode=p.DIRECT)
