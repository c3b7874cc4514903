"""The image pretext methods: their pseudo-labels against independent constructions, and, for every
method, gradients reaching its heads, heads in the checkpoint, exact resume, the checkpoint working
downstream, and a tiny run beating chance on held-out frames."""
import itertools
import json
import math

import numpy as np
import pytest
import torch

from tcn_robot.checkpoint import load_checkpoint
from tcn_robot.cli import main
from tcn_robot.config import load_config
from tcn_robot.data.record import record_dataset
from tcn_robot.envs import make_pour_config
from tcn_robot.methods import METHODS, method_class
from tcn_robot.models import EmbeddingNet
from tcn_robot.pretext.transforms import (NEIGHBOURS, greedy_permutations, patch_pairs, rotations, shuffle_tiles,
                                          tile_crops)
from tcn_robot.train.method import Objective
from tcn_robot.train.run import EpisodeSubset, train

PRETEXT = [name for name in METHODS if name != "tcn"]
SMALL = ["model.image_size=32", "model.width=8", "model.head_channels=16", "model.hidden=32", "train.val_every=4",
         "train.checkpoint_every=2", "train.val_episodes=6", "simclr.batch_size=16", "rotation.batch_size=4", "jigsaw.batch_size=4",
         "jigsaw.permutations=8", "relpos.batch_size=8", "relpos.patch=8", "relpos.gap=2", "relpos.jitter=1", "relpos.tile_size=16",
         "pirl.batch_size=8", "pirl.negatives=32", "pirl.permutations=8", "jigsaw.tiles.tile_size=16", "pirl.tiles.tile_size=16",
         "cpc.batch_size=4", "cpc.window=8", "cpc.stride=1", "cvrl.batch_size=4", "cvrl.clip_length=4", "cvrl.stride=2",
         "shuffle_learn.batch_size=16", "shuffle_learn.window=12"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretext_data")
    record_dataset(make_pour_config(episode_steps=24, num_particles=10), root, 16, 2, 32, 0, "human=0.5,robot=0.5")
    return root


def binomial_tail(n: int, p: float, k: int) -> float:
    """P(X >= k) for X ~ Binomial(n, p): how likely guessing scores k hits of n."""
    log = lambda i: math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) + (n - i) * math.log1p(-p)  # noqa: E731
    return sum(math.exp(log(i)) for i in range(k, n + 1))


def images(b=3, s=12, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 255, (b, s, s, 3), dtype=np.uint8))


# ----------------------------------------------------------------- pseudo-labels
def test_rotation_labels_are_np_rot90_turns():
    frames = images()
    turned, labels = rotations(frames.permute(0, 3, 1, 2).float())
    for i in range(len(turned)):
        k, b = int(labels[i]), i % len(frames)
        assert np.array_equal(turned[i].permute(1, 2, 0).numpy(), np.rot90(frames[b].numpy(), k).astype(np.float32))


def naive_greedy(count, cells, seed):
    every = list(itertools.permutations(range(cells)))
    chosen = [every[int(np.random.default_rng(seed).integers(len(every)))]]
    while len(chosen) < count:
        best, best_d = None, -1
        for p in every:
            d = min(sum(a != b for a, b in zip(p, q)) for q in chosen)
            if d > best_d:
                best, best_d = p, d
        chosen.append(best)
    return np.array(chosen)


def min_hamming(perms):
    return min(int((a != b).sum()) for a, b in itertools.combinations(perms, 2))


def test_jigsaw_permutations_are_the_naive_greedy_set_and_invert_to_the_original_tiles():
    small = greedy_permutations(25, cells=6, seed=3)
    assert np.array_equal(small, naive_greedy(25, 6, 3)) and min_hamming(small) == min_hamming(naive_greedy(25, 6, 3))
    perms = greedy_permutations(100, cells=9, seed=0)
    assert len({tuple(p) for p in perms}) == 100 and all(sorted(p) == list(range(9)) for p in perms)
    assert min_hamming(perms) >= 6  # far apart: a random set of 100 has pairs 2 apart
    tiles = torch.arange(4 * 9 * 2).view(4, 9, 2)
    shuffled, labels = shuffle_tiles(tiles, torch.from_numpy(perms), torch.Generator().manual_seed(0))
    for b in range(4):
        p = perms[int(labels[b])]
        restored = torch.empty_like(shuffled[b])
        restored[torch.from_numpy(p)] = shuffled[b]  # position i holds tile p[i]
        assert torch.equal(restored, tiles[b])


def test_tiles_are_crops_inside_their_own_cells():
    x = torch.rand(2, 3, 30, 30)
    tiles, corners = tile_crops(x, 3, 0.8, torch.Generator().manual_seed(0))
    assert tiles.shape == (2, 9, 3, 8, 8)
    for b, k in itertools.product(range(2), range(9)):
        r, c = corners[b, k].tolist()
        assert r // 10 == k // 3 and c // 10 == k % 3 and (r % 10) + 8 <= 10 and (c % 10) + 8 <= 10
        assert torch.equal(tiles[b, k], x[b, :, r : r + 8, c : c + 8])


def test_relative_position_labels_decode_to_the_patch_offsets():
    x = torch.rand(64, 3, 40, 40)
    centre, neighbour, labels, corners = patch_pairs(x, patch=8, gap=3, jitter=2, generator=torch.Generator().manual_seed(1))
    offset = corners[:, 1] - corners[:, 0]
    assert torch.equal(torch.round(offset / 11.0).long(), NEIGHBOURS[labels])
    assert ((offset - NEIGHBOURS[labels] * 11).abs() <= 4).all() and set(labels.tolist()) == set(range(8))
    for b in range(5):
        (r0, c0), (r1, c1) = corners[b].tolist()
        assert torch.equal(centre[b], x[b, :, r0 : r0 + 8, c0 : c0 + 8]) and torch.equal(neighbour[b], x[b, :, r1 : r1 + 8, c1 : c1 + 8])


def test_pirl_bank_update_is_the_momentum_formula():
    cfg = load_config(None, SMALL + ["pirl.momentum=0.5"])
    pirl = method_class("pirl")(cfg)
    pirl.bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    pirl.update_bank(torch.tensor([0, 2]), torch.tensor([[0.0, 1.0], [0.6, 0.8]]))
    s = float(1 / np.sqrt(2))
    assert torch.allclose(pirl.bank, torch.tensor([[s, s], [0.0, 1.0], [0.6, 0.8]]), atol=1e-6)


# ----------------------------------------------------------------- every method
@pytest.mark.parametrize("name", PRETEXT)
def test_heads_get_gradients_and_resume_equals_training_straight_through(name, data, tmp_path):
    cfg = load_config(None, [*SMALL, f"train.method={name}", "train.steps=4"])
    from tcn_robot.data.cache import FrameCache
    from tcn_robot.data.episodes import Dataset

    torch.manual_seed(0)
    method = method_class(name)(cfg)
    source = method.source(EpisodeSubset(FrameCache(Dataset.open(data), progress=False), list(range(8))), 0, 0, 1)
    objective = Objective(EmbeddingNet(cfg.model), method)
    loss, logs = objective(source.sample(np.random.default_rng(0)))
    loss.backward()
    heads = [(n, p) for n, p in method.named_parameters()]
    assert heads and all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in heads), [n for n, p in heads if p.grad is None]
    assert logs["frames"] > 0 and np.isfinite(loss.item())

    straight = train(cfg, data, tmp_path / "straight")
    half = load_config(None, [*SMALL, f"train.method={name}", "train.steps=2"])
    train(half, data, tmp_path / "resumed")
    resumed = train(cfg, data, tmp_path / "resumed", resume=True)
    a = load_checkpoint(tmp_path / "straight/checkpoints/last.pt")
    b = load_checkpoint(tmp_path / "resumed/checkpoints/last.pt")
    assert straight["steps"] == resumed["steps"] == 4 and a["method_name"] == name
    assert set(a["method"]) >= {k for k, _ in heads} and a["method"].keys() == b["method"].keys()
    for part in ("model", "method"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)


@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    """Videos of a bright square crossing a tinted background at a random constant velocity (view 1
    mirrored): frame order is plain to see, so Shuffle & Learn's slow start stays short."""
    from tcn_robot.data.episodes import EpisodeWriter, write_manifest

    root = tmp_path_factory.mktemp("squares")
    rng = np.random.default_rng(0)
    for e in range(12):
        w = EpisodeWriter(root, f"ep{e:05d}", 2, 10, (32, 32))
        start, velocity = rng.uniform(4, 20, 2), rng.uniform(-0.8, 0.8, 2)
        tint, colour = rng.integers(0, 80, 3), rng.integers(150, 256, 3)
        for t in range(24):
            img = np.empty((32, 32, 3), np.uint8)
            img[:] = tint
            y, x = np.clip(start + velocity * t, 0, 24).astype(int)
            img[y : y + 8, x : x + 8] = colour
            w.add([img, np.ascontiguousarray(img[:, ::-1])])
        w.commit({"name": f"ep{e:05d}", "fps": 10, "image_size": [32, 32]}, None)
    write_manifest(root, {"synthetic": "moving squares"})
    return root


TINY_RUN = {"simclr": (150, 3e-3), "rotation": (40, 3e-3), "jigsaw": (60, 3e-3), "relpos": (150, 3e-3), "pirl": (600, 1e-3),
            "cpc": (100, 3e-3), "cvrl": (150, 3e-3), "shuffle-learn": (800, 3e-3)}


@pytest.mark.parametrize("name", PRETEXT)
def test_a_tiny_run_beats_chance_and_its_checkpoint_works_downstream(name, data, squares, tmp_path):
    run = tmp_path / "run"
    steps, lr = TINY_RUN[name]
    extra = [f"train.val_every={steps}", f"train.lr={lr}"]
    if name == "shuffle-learn":  # its loss sits at log 2 for a few hundred steps before it learns: small and plain videos
        data = squares
        extra += ["model.image_size=16", "model.head_channels=8", "shuffle_learn.window=24", "shuffle_learn.positive_share=0.5"]
    assert main(["pretrain", "--method", name, "--data", str(data), "--out", str(run), "--steps", str(steps), *SMALL, *extra]) == 0
    v = json.loads((run / "metrics.json").read_text())["val"]
    assert binomial_tail(v["pretext_items"], 1 - v["pretext_chance_error"], round(v["pretext_items"] * (1 - v["pretext_error"]))) < 0.01, v
    best = run / "checkpoints" / "best.pt"
    demo = str(data / "ep00000")
    assert main(["evaluate", "--checkpoint", str(best), "--data", str(data), "--out", str(tmp_path / "ev"), "--demo", demo]) == 0
    assert main(["train-rl", "--out", str(tmp_path / "rl"), "--reward", "tcn", "--encoder", str(best), "--demo", demo,
                 "--steps", "16", "--n-envs", "1", "env.episode_steps=16", "env.num_particles=10", "env.image_size=32",
                 "rl.eval_every=16", "rl.eval_episodes=1", "rl.ppo.n_steps=16", "rl.ppo.batch_size=16", "rl.ppo.n_epochs=1"]) == 0


def test_the_docs_describe_every_registered_method():
    from conftest import ROOT

    text = (ROOT / "docs" / "pretext.md").read_text()
    assert all(f"`{name}`" in text for name in PRETEXT)
