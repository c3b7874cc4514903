"""The TCN head (tcn_robot/models.py): the spatial soft-argmax against a naive per-pixel sum, and the
presence option against its definition and on what it adds (whether a feature is there, not only where)."""
import math

import torch

from tcn_robot.config import ModelConfig
from tcn_robot.models import EmbeddingNet, SpatialSoftArgmax, TCNHead


def naive_soft_argmax(maps: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, C, H, W) -> (B, 2C): for each channel, sum over pixels of softmax weight times the pixel's (x, y) in [-1, 1]."""
    b, c, h, w = maps.shape
    out = torch.zeros(b, 2 * c)
    for i in range(b):
        for k in range(c):
            weights = [[math.exp(maps[i, k, y, x].item() / temperature) for x in range(w)] for y in range(h)]
            total = sum(map(sum, weights))
            for y in range(h):
                for x in range(w):
                    out[i, 2 * k] += weights[y][x] / total * (-1 + 2 * x / (w - 1))
                    out[i, 2 * k + 1] += weights[y][x] / total * (-1 + 2 * y / (h - 1))
    return out


def test_soft_argmax_is_the_expected_position_under_the_softmax():
    torch.manual_seed(0)
    maps = torch.randn(2, 3, 5, 7)
    layer = SpatialSoftArgmax()
    with torch.no_grad():
        layer.log_temperature.fill_(math.log(0.5))
    assert torch.allclose(layer(maps), naive_soft_argmax(maps, 0.5), atol=1e-5)


def test_presence_feeds_each_channels_maximum_beside_its_position():
    torch.manual_seed(0)
    head = TCNHead(4, 3, 8, 5, presence=True).eval()
    features = torch.randn(2, 4, 6, 6)
    maps = head.convs(features)
    expected = head.fc(torch.cat([naive_soft_argmax(maps, 1.0), maps.amax((2, 3))], 1))
    assert torch.allclose(head(features), expected, atol=1e-5)
    # what the soft-argmax drops: a peak at the same place, twice as high, moves no keypoint
    layer, peak = SpatialSoftArgmax(), torch.zeros(1, 1, 9, 9)
    peak[0, 0, 2, 6] = 20.0
    assert torch.allclose(layer(peak), layer(2 * peak), atol=1e-6)


def test_presence_is_off_by_default_and_changes_only_the_fc_input():
    small = dict(image_size=16, width=8, head_channels=8, hidden=16, embedding_dim=6)
    plain, present = EmbeddingNet(ModelConfig(**small)), EmbeddingNet(ModelConfig(**small, presence=True))
    assert ModelConfig().presence is False and plain.head.fc[0].in_features == 16
    assert present.head.fc[0].in_features == 24
    frames = torch.randint(0, 255, (4, 16, 16, 3), dtype=torch.uint8)
    assert present.eval().embed(frames).shape == (4, 6)
