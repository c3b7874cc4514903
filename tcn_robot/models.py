"""Encoders and the TCN embedding head (Sermanet et al. 2017, Sec. IV).

The paper's network: an ImageNet Inception-v3 trunk to Mixed_5d, two 3x3 convolutions with batch
norm and ReLU, a spatial softmax (expected 2-D position per channel), a fully connected layer and
a 32-d embedding. Here the trunk is either a small CNN that trains usefully on a CPU at 64-128 px
or a ResNet-18 (He et al. 2016) whose parameter names follow torchvision's, so its ImageNet
weights load from a local file the user names (never from the network).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import UserError
from .config import ModelConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Five 3x3 conv-BN-ReLU layers, stride 8 in all: (B, 3, S, S) -> (B, 4w, S/8, S/8)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.layers = nn.Sequential(conv_bn(3, w, 2), conv_bn(w, w), conv_bn(w, 2 * w, 2), conv_bn(2 * w, 2 * w), conv_bn(2 * w, 4 * w, 2))
        self.out_channels = 4 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(out)) + identity, inplace=True)


class ResNet18(nn.Module):
    """ResNet-18 to ``layer3`` (stride 16, 256 channels), named as torchvision's ``resnet18``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.out_channels = 256

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x)), inplace=True))
        return self.layer3(self.layer2(self.layer1(x)))

    def load_pretrained(self, path: str | Path) -> None:
        """Load torchvision-format weights from ``path`` (layers past layer3 and fc are ignored)."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: pretrained weights file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise UserError(f"{path}: not a torch state dict ({type(e).__name__}: {e})") from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        own = self.state_dict()
        keep = {k: v for k, v in state.items() if k in own}
        missing = [k for k in own if k not in keep]
        if missing or any(keep[k].shape != own[k].shape for k in keep):
            raise UserError(f"{path}: not ResNet-18 weights in torchvision's layout (missing {missing[:3]}...)")
        self.load_state_dict(keep)


class SpatialSoftArgmax(nn.Module):
    """Expected 2-D image position of each channel under a spatial softmax (Levine et al. 2016;
    the TCN head): (B, C, H, W) -> (B, 2C) as (x, y) pairs in [-1, 1]. The softmax temperature
    is learned."""

    def __init__(self) -> None:
        super().__init__()
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        attn = F.softmax(x.float().flatten(2) / self.log_temperature.exp(), dim=-1).view(b, c, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device)
        ex = (attn.sum(2) * xs).sum(-1)
        ey = (attn.sum(3) * ys).sum(-1)
        return torch.stack([ex, ey], -1).flatten(1)


class TCNHead(nn.Module):
    """Two 3x3 conv-BN-ReLU, spatial soft-argmax, FC-ReLU, FC to the embedding.

    With ``presence`` the FC also reads each channel's spatial maximum (B, C) after its 2C keypoint
    coordinates: the soft-argmax normalizes a channel over the image, so it says where a feature is
    but not whether (or how strongly) it is there.
    """

    def __init__(self, cin: int, channels: int, hidden: int, dim: int, presence: bool = False) -> None:
        super().__init__()
        self.convs = nn.Sequential(conv_bn(cin, channels), conv_bn(channels, channels))
        self.keypoints = SpatialSoftArgmax()
        self.presence = presence
        fc_in = (3 if presence else 2) * channels
        self.fc = nn.Sequential(nn.Linear(fc_in, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        maps = self.convs(features)
        x = self.keypoints(maps)
        if self.presence:
            x = torch.cat([x, maps.float().amax((2, 3))], 1)
        return self.fc(x)


class EmbeddingNet(nn.Module):
    """Images -> embeddings. ``raw`` and ``forward`` take preprocessed float images (B, 3, S, S);
    ``embed`` takes uint8 frames (N, H, W, 3) of one video in time order and applies exactly the
    training preprocessing.

    With ``cfg.context`` T > 1 (a clip encoder, CVRL's) a frame's embedding reads the T frames ending
    at it, ``cfg.context_stride`` s apart: a temporal convolution over their per-frame embeddings
    (``window``). It is causal: the first frames of a video repeat frame 0 for what came before.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.encoder == "small":
            self.encoder = SmallCNN(cfg.width)
        elif cfg.encoder == "resnet18":
            self.encoder = ResNet18()
            if cfg.pretrained:
                self.encoder.load_pretrained(cfg.pretrained)
        else:
            raise UserError(f"model.encoder must be 'small' or 'resnet18', got {cfg.encoder!r}")
        self.head = TCNHead(self.encoder.out_channels, cfg.head_channels, cfg.hidden, cfg.embedding_dim, cfg.presence)
        if cfg.context > 1:
            self.temporal = nn.Conv1d(cfg.embedding_dim, cfg.embedding_dim, kernel_size=cfg.context)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def span(self) -> int:
        """How many frames one embedding reads: (context - 1) * stride + 1."""
        return (self.cfg.context - 1) * self.cfg.context_stride + 1

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed images (B, 3, S, S) -> per-frame embeddings (B, D), L2-normalized if ``cfg.normalize``."""
        return self._finish(self.raw(images))

    def raw(self, images: torch.Tensor) -> torch.Tensor:
        """The per-frame embedding before normalization (B, D) float32: what a method's head sits on."""
        return self.head(self.encoder(images)).float()

    def _finish(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(z, dim=-1) if self.cfg.normalize else z

    def window(self, raw: torch.Tensor) -> torch.Tensor:
        """Per-frame raw embeddings of clips (B, context, D), ``context_stride`` apart -> the clips'
        embeddings (B, D): the embedding of each clip's last frame."""
        if self.cfg.context == 1:
            return self._finish(raw[:, -1])
        return self._finish(self.temporal(raw.transpose(1, 2)).squeeze(-1))

    def causal(self, raw: torch.Tensor) -> torch.Tensor:
        """Per-frame raw embeddings of one video (N, D) in time order -> every frame's embedding (N, D)."""
        if self.cfg.context == 1:
            return self._finish(raw)
        padded = torch.cat([raw[:1].expand(self.span - 1, -1), raw])  # before the video: its first frame
        z = F.conv1d(padded.T[None], self.temporal.weight, self.temporal.bias, dilation=self.cfg.context_stride)
        return self._finish(z[0].T)

    def to_unit(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) on any device -> float (B, 3, S, S) in [0, 1] on the model's device."""
        x = frames.to(self.mean.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        s = self.cfg.image_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images -> the encoder's input (ImageNet statistics, channels-last)."""
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """The evaluation preprocessing: ``normalize(to_unit(frames))`` (training adds augmentation between)."""
        return self.normalize(self.to_unit(frames))

    @torch.no_grad()
    def frame_features(self, frames, batch_size: int = 256) -> torch.Tensor:
        """uint8 frames (N, H, W, 3) (numpy or tensor) -> raw per-frame embeddings (N, D) float32 on the
        CPU, in eval mode, in batches."""
        was_training = self.training
        if was_training:  # switching modes walks every module: a cost per call when embedding frame by frame (RL)
            self.eval()
        frames = torch.from_numpy(np.array(frames)) if isinstance(frames, np.ndarray) else torch.as_tensor(frames)
        out = [self.raw(self.preprocess(frames[i : i + batch_size])).cpu() for i in range(0, len(frames), batch_size)]
        if was_training:
            self.train()
        return torch.cat(out) if out else torch.zeros(0, self.cfg.embedding_dim)

    @torch.no_grad()
    def embed(self, frames, batch_size: int = 256) -> torch.Tensor:
        """uint8 frames (N, H, W, 3) of one video in time order -> embeddings (N, D) float32 on the CPU,
        in eval mode (with ``context`` 1 the frames may be any set: each is embedded alone)."""
        was_training = self.training
        if was_training:
            self.eval()
        z = self.causal(self.frame_features(frames, batch_size).to(self.mean.device)).cpu()
        if was_training:
            self.train()
        return z


def embed_episode(net: EmbeddingNet, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """An episode's frames (T, V, H, W, 3) uint8 -> embeddings (V, T, D), each view a video."""
    return np.stack([net.embed(np.ascontiguousarray(frames[:, v]), batch_size).numpy() for v in range(frames.shape[1])])
