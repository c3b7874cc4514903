"""MP4 writing with OpenCV: H.264 where the build has it, else MPEG-4 part 2 (mp4v)."""
from __future__ import annotations

import errno
import functools
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from .io import AtomicFile, silenced

_CODECS = ("avc1", "mp4v")


@functools.lru_cache(maxsize=1)
def mp4_codec() -> str:
    """The first codec of ``_CODECS`` this OpenCV build can write (probed once per process)."""
    with tempfile.TemporaryDirectory() as d, silenced(2):
        for codec in _CODECS:
            w = cv2.VideoWriter(os.path.join(d, "probe.mp4"), cv2.VideoWriter_fourcc(*codec), 20, (16, 16))
            ok = w.isOpened()
            w.release()
            if ok:
                return codec
    raise RuntimeError(f"OpenCV cannot write MP4 here (tried {', '.join(_CODECS)})")


class VideoWriter:
    """Write RGB uint8 frames (H, W, 3) to ``path``; the file appears under its name only on ``close``,
    after it reads back with every frame (OpenCV does not report a write that the disk refused).

    Use as a context manager; an exception inside the block discards the partial file.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self._file = AtomicFile(self.path)
        w, h = size
        self.codec = mp4_codec()
        self._writer = cv2.VideoWriter(str(self._file.tmp), cv2.VideoWriter_fourcc(*self.codec), fps, (w, h))
        if not self._writer.isOpened():
            self._file.abort(OSError(errno.EIO, f"OpenCV could not open {self.path} for writing"))
        self.size = (w, h)
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if frame.shape[1::-1] != self.size or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.shape} {frame.dtype} does not match the video size {self.size} uint8")
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        self._writer.release()
        with silenced(2):  # FFmpeg's complaints about a file the disk cut short
            cap = cv2.VideoCapture(str(self._file.tmp))
            written = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else -1
            cap.release()
        if written != self.frames:
            self._file.abort(OSError(errno.EIO, f"{self.path}: {self.frames} frames written, {max(written, 0)} read back"))
        self._file.commit()

    def abort(self) -> None:
        self._writer.release()
        self._file.abort()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> int:
    """Write all ``frames`` to ``path``; returns the number written."""
    frames = iter(frames)
    first = next(frames)
    with VideoWriter(path, fps, (first.shape[1], first.shape[0])) as w:
        w.write(first)
        for f in frames:
            w.write(f)
    return w.frames


def read_video(path: str | Path) -> np.ndarray:
    """All frames of ``path`` as (T, H, W, 3) RGB uint8."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)
