"""Frame encoders: what turns video frames into embeddings for the reward, RL and evaluation alike, from
a trained checkpoint or a baseline with no training."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import UserError
from .checkpoint import load_embedder
from .config import ModelConfig
from .methods import BASELINES
from .models import EmbeddingNet
from .runs import checkpoint_spec


class Encoder:
    """An embedding of video: ``__call__(frames)`` maps the uint8 frames (N, H, W, 3) of one video in
    time order to float32 embeddings (N, D), each frame's read from the ``span`` frames ending at it
    (1: the frame alone; then the frames may be any set); ``streams(n)`` embeds n live videos a frame
    at a time, the reward wrapper's use.

    Args:
        name: the row name in reports.
        features: frames -> per-frame features (N, F) (torch tensor or array).
        causal: features of one video (N, F) -> its embeddings (N, D); default: the features.
        window: features of clips (B, context, F), ``stride`` frames apart -> the clips' last-frame embeddings (B, D).
        span: frames one embedding reads, (context - 1) * stride + 1.
    """

    def __init__(self, name: str, features, causal=None, window=None, span: int = 1, stride: int = 1) -> None:
        self.name, self.features, self.span, self.stride = name, features, span, stride
        self._causal = causal or (lambda f: f)
        self._window = window or (lambda w: w[:, -1])

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return _numpy(self._causal(torch.as_tensor(self.features(frames))))

    def window(self, features: torch.Tensor) -> np.ndarray:
        return _numpy(self._window(features))

    def streams(self, n: int) -> EncoderStreams:
        return EncoderStreams(self, n)


def _numpy(x) -> np.ndarray:
    return np.asarray(x.detach().cpu().numpy() if torch.is_tensor(x) else x, dtype=np.float32)


class EncoderStreams:
    """n videos embedded a frame at a time: the last ``span`` per-frame features of each; a video
    that starts fills its history with its first frame (as ``Encoder`` pads a video's start)."""

    def __init__(self, encoder: Encoder, n: int) -> None:
        self.encoder, self.history = encoder, None
        self.n = n

    def restart(self, index, frames: np.ndarray) -> np.ndarray:
        """Videos ``index`` (k,) start with ``frames`` (k, H, W, 3): their first embeddings (k, D)."""
        f = torch.as_tensor(self.encoder.features(frames)).float()
        if self.history is None:
            self.history = torch.zeros(self.n, self.encoder.span, f.shape[1])
        self.history[torch.as_tensor(index)] = f[:, None].expand(-1, self.encoder.span, -1)
        return self._embed(torch.as_tensor(index))

    def step(self, frames: np.ndarray) -> np.ndarray:
        """The next frame of every video (n, H, W, 3) -> its embedding (n, D)."""
        f = torch.as_tensor(self.encoder.features(frames)).float()
        self.history = torch.cat([self.history[:, 1:], f[:, None]], 1)
        return self._embed(torch.arange(self.n))

    def _embed(self, index: torch.Tensor) -> np.ndarray:
        return self.encoder.window(self.history[index][:, :: self.encoder.stride])


def checkpoint_encoder(spec: str, device: torch.device) -> Encoder:
    """``PATH`` or ``NAME=PATH``; the name defaults to the run folder's name."""
    name, path = checkpoint_spec(spec)
    if not name:
        name = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
    return network_encoder(name, load_embedder(path, device))


def network_encoder(name: str, net: EmbeddingNet) -> Encoder:
    """The embedding of ``net`` (in eval mode) as an ``Encoder``."""
    device = net.mean.device

    @torch.no_grad()
    def causal(f):
        return net.causal(f.to(device))

    @torch.no_grad()
    def window(w):
        return net.window(w.to(device))

    return Encoder(name, net.frame_features, causal, window, net.span, net.cfg.context_stride)


def baseline_encoder(kind: str, model: ModelConfig, seed: int, device: torch.device, pixels: int = 16,
                     reference: np.ndarray | None = None) -> Encoder:
    """An encoder without training.

    ``random``: the network of ``model`` at its seeded initialization, in evaluation mode. Degenerate:
    with batch-norm statistics still at 0 and 1 every layer shrinks its activations, so every frame
    maps to nearly the same unit vector (a reward from it is constant to about 1e-6 per step).
    ``random-features``: the same untrained trunk with its batch-norm statistics set from the
    ``reference`` frames (N, H, W, 3), globally average-pooled, standardized by the pooled features'
    mean and std over those frames and L2-normalized: a random but informative embedding.
    ``pixels``: frames downsampled to ``pixels`` x ``pixels`` by area averaging, flattened.
    """
    if kind in ("random", "random-features"):
        torch.manual_seed(seed)
        net = EmbeddingNet(ModelConfig(**{**model.__dict__, "pretrained": ""})).to(device).eval()
        if kind == "random":
            return network_encoder("random init", net)
        if reference is None or len(reference) < 2:
            raise UserError("the random-features baseline needs reference frames to set its statistics")
        return _random_features(net, np.asarray(reference))
    if kind == "pixels":
        def fn(frames: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float() / 255.0
            return F.adaptive_avg_pool2d(x, pixels).flatten(1).numpy()

        return Encoder(f"pixels {pixels}x{pixels}", fn)
    raise UserError(f"--baseline must be one of {', '.join(BASELINES)}, got {kind!r}")


def _random_features(net: EmbeddingNet, reference: np.ndarray) -> Encoder:
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.momentum = None  # a cumulative average: the statistics of every reference batch alike
        m.reset_running_stats()
    net.train()
    with torch.no_grad():
        for i in range(0, len(reference), 256):
            net.encoder(net.preprocess(torch.from_numpy(reference[i : i + 256])))
    net.eval()

    @torch.no_grad()
    def pooled(frames) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(frames))
        return torch.cat([net.encoder(net.preprocess(x[i : i + 256])).mean((2, 3)).cpu() for i in range(0, len(x), 256)])

    ref = pooled(reference)
    mean, std = ref.mean(0), ref.std(0).clamp_min(1e-8)
    return Encoder("random features", lambda frames: F.normalize((pooled(frames) - mean) / std, dim=1))
