"""The pseudo-labels of the image pretext tasks, built on the device from batches of frames.

Images are float tensors (B, 3, S, S) in [0, 1]; every random choice draws from ``generator`` (a
``torch.Generator`` on the images' device; None: torch's global generator, whose state the
checkpoints save).
"""
from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma


def _rand(shape, generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=device)


def _randint(high: int, shape, generator, device) -> torch.Tensor:
    return torch.randint(high, shape, generator=generator, device=device)


# ----------------------------------------------------------------- rotation (Gidaris et al. 2018)
def rotations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image in all four rotations: (B, C, S, S) -> (4B, C, S, S) and labels (4B,) in 0..3,
    label k = k quarter turns counter-clockwise (``np.rot90(image, k)`` on an (S, S, C) image)."""
    if x.shape[-1] != x.shape[-2]:
        raise ValueError("rotations need square images")
    turned = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(len(x))
    return turned, labels


# ----------------------------------------------------------------- colour
def grayscale(x: torch.Tensor, prob: float, generator=None) -> torch.Tensor:
    """Each image, with probability ``prob``, replaced by its luma in all three channels."""
    if prob <= 0:
        return x
    luma = (x * torch.tensor(GRAY, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
    pick = (_rand(len(x), generator, x.device) < prob).view(-1, 1, 1, 1)
    return torch.where(pick, luma.expand_as(x), x)


def channel_noise(x: torch.Tensor, prob: float, generator=None) -> torch.Tensor:
    """Each image, with probability ``prob``, keeps one random channel and has the other two
    replaced by Gaussian noise of that channel's mean and std (Doersch et al. 2015, against
    chromatic aberration)."""
    b = len(x)
    keep = _randint(3, (b,), generator, x.device)
    pick = _rand(b, generator, x.device) < prob
    kept = x[torch.arange(b, device=x.device), keep]  # (B, S, S)
    mean, std = kept.mean((1, 2), keepdim=True), kept.std((1, 2), keepdim=True)
    noise = mean[:, None] + std[:, None] * torch.randn(x.shape, generator=generator, device=x.device)
    drop = (torch.arange(3, device=x.device)[None] != keep[:, None]) & pick[:, None]  # (B, 3)
    return torch.where(drop[:, :, None, None], noise, x)


def standardize(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Each image (..., C, H, W) normalized by its own per-channel mean and std: the network cannot
    match tiles or patches by their brightness or colour cast."""
    mean = x.mean((-2, -1), keepdim=True)
    std = x.std((-2, -1), keepdim=True)
    return (x - mean) / (std + eps)


# ----------------------------------------------------------------- tiles (jigsaw, PIRL)
def tile_crops(x: torch.Tensor, grid: int, fraction: float, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``grid`` x ``grid`` cells of each image, each cropped at a random place inside its cell
    to a square of ``fraction`` of the cell's side (the gaps keep edges from giving the answer).

    Returns tiles (B, grid^2, C, t, t) in row-major cell order, and their top-left corners (B, grid^2, 2).
    """
    b, c, s, _ = x.shape
    cell = s // grid
    t = max(1, int(round(cell * fraction)))
    k = grid * grid
    origin = torch.stack(torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij"), -1).view(k, 2).to(x.device) * cell
    corner = origin[None] + _randint(cell - t + 1, (b, k, 2), generator, x.device)
    ar = torch.arange(t, device=x.device)
    rows = (corner[..., 0, None] + ar)[:, :, :, None]  # (B, K, t, 1)
    cols = (corner[..., 1, None] + ar)[:, :, None, :]  # (B, K, 1, t)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    tiles = x.permute(0, 2, 3, 1)[bi, rows, cols]  # (B, K, t, t, C)
    return tiles.permute(0, 1, 4, 2, 3).contiguous(), corner


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """(..., C, h, w) -> (..., C, size, size), bilinear with antialiasing."""
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:])
    if flat.shape[-1] != size or flat.shape[-2] != size:
        flat = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return flat.view(*lead, *flat.shape[-3:])


def greedy_permutations(count: int, cells: int = 9, seed: int = 0) -> np.ndarray:
    """``count`` permutations of ``cells`` tiles, chosen greedily to be far apart (Noroozi & Favaro
    2016): start from a seeded random permutation, then repeatedly add the one whose smallest
    Hamming distance to those chosen is largest (ties: the first in lexicographic order).
    Returns (count, cells) int64."""
    every = np.array(list(itertools.permutations(range(cells))), dtype=np.int8)
    if count > len(every):
        raise ValueError(f"only {len(every)} permutations of {cells} tiles exist, {count} asked")
    chosen = [int(np.random.default_rng(seed).integers(len(every)))]
    nearest = (every != every[chosen[0]]).sum(1)
    for _ in range(count - 1):
        j = int(nearest.argmax())
        chosen.append(j)
        nearest = np.minimum(nearest, (every != every[j]).sum(1))
    return every[chosen].astype(np.int64)


def shuffle_tiles(tiles: torch.Tensor, permutations: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Tiles (B, K, ...) rearranged by a random permutation of the set (P, K) each: position i of
    the result holds tile ``perm[i]``. Returns the shuffled tiles and the permutation labels (B,)."""
    labels = _randint(len(permutations), (len(tiles),), generator, tiles.device)
    order = permutations[labels]  # (B, K)
    return torch.gather(tiles, 1, order.view(*order.shape, *([1] * (tiles.dim() - 2))).expand_as(tiles)), labels


# ----------------------------------------------------------------- relative position (Doersch et al. 2015)
NEIGHBOURS = torch.tensor([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])  # (row, col) steps, label order


def patch_pairs(x: torch.Tensor, patch: int, gap: int, jitter: int, generator=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A centre patch and one of its 8 neighbours from each image: the neighbour sits ``patch + gap``
    pixels away in direction ``NEIGHBOURS[label]``, each patch shifted by up to ``jitter`` pixels.

    Returns centre patches, neighbour patches (B, C, patch, patch), labels (B,) in 0..7, and the
    top-left corners (B, 2, 2) of (centre, neighbour).
    """
    b, c, s, _ = x.shape
    step = patch + gap
    low, high = step + jitter, s - patch - step - jitter  # the centre's corner, so that every neighbour fits
    if high < low:
        raise ValueError(f"{s} px frames cannot hold 3 x 3 patches of {patch} px with gap {gap} and jitter {jitter}")
    labels = _randint(8, (b,), generator, x.device)
    centre = low + _randint(high - low + 1, (b, 2), generator, x.device)
    shift = _randint(2 * jitter + 1, (b, 2, 2), generator, x.device) - jitter
    corners = torch.stack([centre, centre + NEIGHBOURS.to(x.device)[labels] * step], 1) + shift  # (B, 2, 2)
    ar = torch.arange(patch, device=x.device)
    rows = (corners[..., 0, None] + ar)[:, :, :, None]
    cols = (corners[..., 1, None] + ar)[:, :, None, :]
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    both = x.permute(0, 2, 3, 1)[bi, rows, cols].permute(0, 1, 4, 2, 3)  # (B, 2, C, p, p)
    return both[:, 0], both[:, 1], labels, corners
