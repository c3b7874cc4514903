"""The temporal pretext methods (CPC, Shuffle & Learn, CVRL) and the clip encoder: what each is scored
against, causality, the samplers, against independent constructions. (Gradients to the heads, exact
resume, checkpoints downstream and tiny runs beating chance: tests/test_pretext.py, for every method.)"""
import numpy as np
import pytest
import torch

from tcn_robot.config import ModelConfig, load_config
from tcn_robot.pretext.cvrl import linear_gap
from tcn_robot.pretext.shuffle_learn import motion, order_tuple, window_starts
from tcn_robot.methods import method_class
from tcn_robot.models import EmbeddingNet
from tcn_robot.pretext.cpc import prediction_targets

CFG = ["model.image_size=16", "model.width=8", "model.head_channels=8", "model.hidden=16", "model.embedding_dim=6",
       "cpc.window=6", "cpc.stride=1", "cpc.steps_ahead=2", "cpc.context_dim=8", "cvrl.clip_length=3", "cvrl.stride=2"]


def frames(n, seed=0, size=16):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 255, (n, size, size, 3), dtype=np.uint8))


def calibrated(net: EmbeddingNet) -> EmbeddingNet:
    """``net`` with batch-norm running statistics those of a batch of frames (at initialization they are
    0 and 1, which shrink every frame's embedding to nearly the same vector)."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.momentum = 1.0
    net.train()
    with torch.no_grad():
        net.raw(net.preprocess(frames(32, 99)))
    for m in norms:
        m.momentum = 0.1
    return net


# ----------------------------------------------------------------- CPC
def test_cpc_scores_each_prediction_against_the_frame_k_steps_ahead_only():
    b, t, k = prediction_targets(batch=2, window=4, steps_ahead=2)
    assert list(zip(b.tolist(), t.tolist(), k.tolist())) == [
        (0, 0, 1), (0, 1, 1), (0, 2, 1), (1, 0, 1), (1, 1, 1), (1, 2, 1), (0, 0, 2), (0, 1, 2), (1, 0, 2), (1, 1, 2)]
    # hand case: frames are one-hot, each predictor copies the context, the context is the last frame:
    # the prediction for t + k is frame t, which matches frame t + k only if the loss scores it there
    class Recorder(torch.nn.Module):
        def forward(self, *args):
            self.args = args
            return torch.zeros(())

    cpc = method_class("cpc")(load_config(None, CFG))
    z = torch.stack([torch.eye(6), torch.roll(torch.eye(6), 1, 0)])  # 2 windows of 6 distinct one-hot frames
    cpc.predict = lambda z: torch.cat([z[:, : z.shape[1] - k].flatten(0, 1) for k in (1, 2)])  # "predict" = the frame itself
    cpc.loss_fn = Recorder()
    cpc.contrast(z)
    pred, cand, target, frame_ids = cpc.loss_fn.args
    bb, tt, kk = prediction_targets(2, 6, 2)
    assert torch.equal(target, bb * 6 + tt + kk) and torch.equal(frame_ids, torch.arange(12))
    assert torch.equal(cand[target], z[bb, tt + kk])  # the scored frame is k steps after the predicting one
    assert torch.equal(pred, z[bb, tt])


def test_cpc_context_at_t_reads_no_later_frame_and_no_other_window():
    torch.manual_seed(0)
    cfg = load_config(None, CFG)
    net, cpc = calibrated(EmbeddingNet(cfg.model)), method_class("cpc")(cfg)
    windows = torch.stack([frames(6, 1), frames(6, 2)])
    x = cpc.inputs_of(net, windows)
    context = cpc.gru(cpc.encode(net, x, 2))[0]
    changed = windows.clone()
    changed[0, 4:] = frames(2, 3)  # later frames of window 0
    changed[1] = frames(6, 4)  # every frame of the other window (batch statistics would carry it)
    again = cpc.gru(cpc.encode(net, cpc.inputs_of(net, changed), 2))[0]
    assert torch.allclose(context[0, :4], again[0, :4], atol=1e-6)
    assert not torch.allclose(context[0, 4:], again[0, 4:], atol=1e-3)


# ----------------------------------------------------------------- Shuffle & Learn
def test_tuples_are_in_order_exactly_when_labelled_so():
    rng = np.random.default_rng(0)
    seen = set()
    for i in range(400):
        positive = i % 2 == 0
        three, five = order_tuple(np.arange(10, 40), positive, rng)
        a, b, c, d, e = five
        assert a < b < c < d < e and 10 <= a and e < 40
        between = min(three[0], three[2]) < three[1] < max(three[0], three[2])
        assert between == positive and {three[0], three[2]} == {b, d}
        assert three[1] == (c if positive else three[1]) and (positive or three[1] in (a, e))
        seen.add((positive, three[0] < three[2], three[1] in (a, c, e) and ("a" if three[1] == a else "c" if three[1] == c else "e")))
    assert len(seen) == 6  # both directions of (b, c, d), and (b, a, d) and (b, e, d) in both directions


def test_windows_are_drawn_where_the_video_moves():
    video = np.zeros((100, 8, 8, 3), np.uint8)
    video[40:60] = np.random.default_rng(0).integers(0, 255, (20, 8, 8, 3), dtype=np.uint8)  # motion in steps 39..59 only
    moves = motion(video)
    assert moves[:39].max() == 0 and moves[39:60].min() > 0 and moves[60:].max() == 0
    p = window_starts(moves, 10)
    starts = np.random.default_rng(1).choice(len(p), 2000, p=p)
    assert ((starts + 10 > 40) & (starts < 60)).all()  # every window overlaps the moving part
    assert np.allclose(window_starts(np.zeros(50), 10), 1 / 42)  # 51 frames hold 42 windows of 10


# ----------------------------------------------------------------- CVRL
def test_clip_gaps_follow_the_linearly_decreasing_density():
    gaps = linear_gap(20, np.random.default_rng(0), size=20000)
    counts = np.bincount(gaps, minlength=21)
    expected = 20000 * (21 - np.arange(21)) / (21 * 22 / 2)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 37.6  # the 1% critical value for 20 degrees of freedom


def test_one_augmentation_per_clip():
    cvrl = method_class("cvrl")(load_config(None, CFG))
    clip = torch.rand(6, 1, 3, 16, 16).expand(6, 3, 3, 16, 16).contiguous()  # six clips of three equal frames
    out = cvrl.clip_augment(clip)
    assert torch.equal(out, out[:, :1].expand_as(out))  # every frame of a clip transformed alike
    assert not torch.allclose(out[0], out[1])


def test_a_clip_encoders_embedding_of_frame_t_reads_no_later_frame():
    torch.manual_seed(0)
    cfg = method_class("cvrl").configure(load_config(None, CFG))
    assert (cfg.model.context, cfg.model.context_stride) == (3, 2)
    net = calibrated(EmbeddingNet(cfg.model)).eval()
    video = frames(12, 5)
    z = net.embed(video)
    later = video.clone()
    later[7:] = frames(5, 6)
    z2 = net.embed(later)
    assert torch.allclose(z[:7], z2[:7], atol=1e-6) and not torch.allclose(z[7:], z2[7:], atol=1e-3)
    # frame t reads frames t-4, t-2, t: the window function on those equals the video's embedding
    raw = net.frame_features(video)
    for t in (0, 3, 8):
        idx = [max(0, t - 4), max(0, t - 2), t]
        assert torch.allclose(net.window(raw[idx][None])[0], z[t], atol=1e-5)
    plain = EmbeddingNet(ModelConfig(image_size=16, width=8, head_channels=8, hidden=16, embedding_dim=6)).eval()
    assert torch.allclose(plain.embed(video), plain.embed(video.flip(0)).flip(0), atol=1e-5)  # context 1: frames alone


def test_viewpoint_augmentations_move_the_geometry_and_are_left_out_at_zero():
    from tcn_robot.config import AugmentConfig
    from tcn_robot.data.augment import build_augment

    plain = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), jitter_prob=0.0)
    assert [type(m).__name__ for m in build_augment(plain, 32)] == ["RandomResizedCrop", "ColorJitter"]
    torch.manual_seed(0)
    x = torch.zeros(64, 3, 32, 32)
    x[:, :, 4:8, 4:28] = 1.0  # a bar near the top edge
    same = build_augment(plain, 32)(x)
    assert torch.allclose(same, x, atol=1e-4)  # a full-frame crop and no jitter change nothing
    warped = build_augment(AugmentConfig(**{**plain.__dict__, "perspective": 0.6, "rotate_deg": 30.0}), 32)(x)
    moved = (warped - x).abs().flatten(1).amax(1) > 0.5
    assert 0.4 < moved.float().mean() < 1.0  # each applied to about half the images: most moved, some not


def test_mirror_augmentation_flips_left_to_right_at_its_rate():
    from tcn_robot.config import AugmentConfig
    from tcn_robot.data.augment import build_augment

    plain = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), jitter_prob=0.0)
    torch.manual_seed(0)
    x = torch.rand(400, 3, 16, 16)
    assert torch.allclose(build_augment(AugmentConfig(**{**plain.__dict__, "hflip": 1.0}), 16)(x), x.flip(-1), atol=1e-4)
    half = build_augment(AugmentConfig(**{**plain.__dict__, "hflip": 0.5}), 16)(x)
    mirrored = (half - x.flip(-1)).abs().flatten(1).amax(1) < 1e-4
    kept = (half - x).abs().flatten(1).amax(1) < 1e-4
    assert bool((mirrored ^ kept).all())  # every image either mirrored exactly or left as it was
    assert 0.4 < mirrored.float().mean() < 0.6
