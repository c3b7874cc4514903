"""Aligning embodiments without twin recordings: the cycle-consistency loss against a naive loop and on
embeddings that do or do not follow progress, domain confusion's reversed gradient, their batches, and TCN
training with them (exact resume)."""
import numpy as np
import pytest
import torch

from tcn_robot import UserError
from tcn_robot.checkpoint import load_checkpoint
from tcn_robot.config import load_config
from tcn_robot.data.cache import FrameCache
from tcn_robot.data.datasets import EmbodimentSequences, MultiViewTCNBatches, SingleViewTCNBatches
from tcn_robot.data.episodes import Dataset
from tcn_robot.data.record import record_dataset
from tcn_robot.envs import make_pour_config
from tcn_robot.losses import CycleConsistencyLoss, DomainConfusionLoss
from tcn_robot.train.run import train

SMALL = ["model.image_size=32", "model.width=8", "model.head_channels=16", "model.hidden=32", "train.val_every=2",
         "train.checkpoint_every=2", "train.val_episodes=2", "tcn.sequences_per_batch=2", "tcn.frames_per_sequence=4",
         "tcn.loss=infonce", "tcn.align_weight=1", "tcn.align_frames=6", "train.log_every=1"]


def naive_cycle_loss(z, times, temperature, lam):
    """The TCC paper's cycle-back regression with variance, one frame of one ordered pair at a time."""
    terms = []
    for a in range(len(z)):
        for b in range(len(z)):
            if a == b:
                continue
            u, v, t = z[a], z[b], times[a]
            for i in range(len(u)):
                alpha = torch.softmax(torch.stack([-((u[i] - v[j]) ** 2).sum() for j in range(len(v))]) / temperature, 0)
                nearest = sum(alpha[j] * v[j] for j in range(len(v)))
                beta = torch.softmax(torch.stack([-((nearest - u[k]) ** 2).sum() for k in range(len(u))]) / temperature, 0)
                mu = sum(beta[k] * t[k] for k in range(len(u)))
                var = sum(beta[k] * (t[k] - mu) ** 2 for k in range(len(u)))
                terms.append((t[i] - mu) ** 2 / var + lam * torch.log(var))
    return torch.stack(terms).mean()


def test_cycle_loss_equals_a_naive_loop_in_value_and_gradient():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 5, 4, generator=g, dtype=torch.float64) * 0.5
    times = torch.sort(torch.rand(3, 5, generator=g, dtype=torch.float64), 1).values
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    fast = CycleConsistencyLoss(0.3, 0.01)(z1, times)
    slow = naive_cycle_loss(z2, times, 0.3, 0.01)
    fast.backward()
    slow.backward()
    assert torch.allclose(fast, slow, atol=1e-10)
    assert torch.allclose(z1.grad, z2.grad, atol=1e-9)


def progress(t):
    """An embedding that follows progress: a point moving along a half circle."""
    return torch.stack([torch.cos(np.pi * t), torch.sin(np.pi * t)], -1)


def test_embeddings_that_follow_progress_align_videos_of_different_speeds_and_others_do_not():
    loss = CycleConsistencyLoss(0.01, 0.0)
    # three videos of one task at different speeds: their frames sampled at different fractions of the task
    times = torch.stack([torch.linspace(0, 1, 20) ** p for p in (1.0, 0.6, 1.6)])
    aligned = loss(progress(times), times)
    g = torch.Generator().manual_seed(0)
    unrelated = loss(torch.nn.functional.normalize(torch.randn(3, 20, 2, generator=g), dim=-1), times)
    # the cycle's error in units of its spread: within one for progress, orders of magnitude more for noise
    assert aligned < 1.0 and unrelated > 100 * aligned


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("align_data")
    record_dataset(make_pour_config(episode_steps=24, num_particles=10), root, 10, 2, 32, 0, "human=0.4,robot=0.4,random=0.2")
    return root


def test_sequences_take_embodiments_in_turn_sorted_distinct_steps_and_no_random_exploration(data):
    cache = FrameCache(Dataset.open(data), progress=False)
    source = EmbodimentSequences(cache, 4, 6)
    metas = [e.meta for e in cache.episodes]
    assert set(source.groups) == {"human", "robot"}
    rng = np.random.default_rng(0)
    for _ in range(20):
        b = source.sample(rng)
        assert b["align_frames"].shape == (4, 6, 32, 32, 3)
        bodies = [metas[int(e)]["embodiment"] for e in b["align_episode"]]
        assert bodies[0] != bodies[1] and bodies[0] == bodies[2] and bodies[1] == bodies[3]
        assert all(metas[int(e)]["demonstrator"] in ("human", "robot") for e in b["align_episode"])
        assert [("human", "robot")[int(k)] for k in b["align_embodiment"]] == bodies
        t = b["align_time"]
        assert torch.all(t[:, 1:] > t[:, :-1]) and t.min() >= 0 and t.max() <= 1
        lengths = torch.tensor([cache.arrays[int(e)].shape[0] - 1 for e in b["align_episode"]], dtype=torch.float32)
        steps = t * lengths[:, None]  # frame numbers
        assert torch.allclose(steps, steps.round(), atol=1e-4)


def test_one_embodiment_is_a_clear_error(tmp_path):
    record_dataset(make_pour_config(episode_steps=12, num_particles=6), tmp_path / "humans", 2, 2, 32, 0, "human=1")
    cache = FrameCache(Dataset.open(tmp_path / "humans"), progress=False)
    with pytest.raises(UserError, match="needs human and robot demonstrations.*human: 2"):
        EmbodimentSequences(cache, 2, 6)


def test_tcn_batches_label_each_frame_with_who_its_view_films(data, tmp_path):
    """Anchors and positives (and single-view negatives) carry their episode's embodiment; in twin
    recordings each view its own (meta view_embodiments); a lone embodiment is a clear error."""
    cache = FrameCache(Dataset.open(data), progress=False)
    rng = np.random.default_rng(0)
    for source, copies in ((MultiViewTCNBatches(cache, 3, 4, embodiments=True), 2),
                           (SingleViewTCNBatches(cache, 3, 4, 2, 4, embodiments=True), 3)):
        assert source.embodiments == ["human", "robot"]
        for _ in range(10):
            b = source.sample(rng)
            bodies = [cache.episodes[int(e)].meta["embodiment"] for e in b["episode"]] * copies
            assert [source.embodiments[int(k)] for k in b["embodiment"]] == bodies
    record_dataset(make_pour_config(episode_steps=12, num_particles=6), tmp_path / "twins", 2, 2, 32, 0, "paired=1")
    twins = FrameCache(Dataset.open(tmp_path / "twins"), progress=False)
    source = MultiViewTCNBatches(twins, 2, 6, embodiments=True)
    # each twin episode: the human world's 2 cameras, then the robot twin's 2
    assert [source.embodiment_of(e, np.arange(4)).tolist() for e in range(2)] == [[0, 0, 1, 1]] * 2
    b = source.sample(rng)
    assert b["embodiment"].shape == (24,) and set(b["embodiment"].tolist()) == {0, 1}
    record_dataset(make_pour_config(episode_steps=12, num_particles=6), tmp_path / "humans", 2, 2, 32, 0, "human=1")
    with pytest.raises(UserError, match="humans: domain confusion on the TCN batch .* found only human"):
        MultiViewTCNBatches(FrameCache(Dataset.open(tmp_path / "humans"), progress=False), 2, 6, embodiments=True)


def trains_and_resumes_exactly(data, tmp_path, extra):
    """4 training steps straight and 2 + 2 with a resume between: every tensor of the model and of the
    method's own parts equal at the end. Returns the straight run's TensorBoard scalars."""
    cfg = load_config(None, [*SMALL, *extra, "train.steps=4"])
    straight = train(cfg, data, tmp_path / "straight", "train-tcn")
    train(load_config(None, [*SMALL, *extra, "train.steps=2"]), data, tmp_path / "resumed", "train-tcn")
    resumed = train(cfg, data, tmp_path / "resumed", "train-tcn", resume=True)
    assert straight["steps"] == resumed["steps"] == 4
    a, b = (load_checkpoint(tmp_path / f"{r}/checkpoints/last.pt") for r in ("straight", "resumed"))
    for part in ("model", "method"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), k
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "straight/tb")).Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}, a["method"]


def test_tcn_with_domain_confusion_on_its_batch_reads_no_demonstrations_and_resumes_exactly(data, tmp_path):
    extra = ["tcn.align_weight=0", "tcn.domain_weight=1", "tcn.domain_hidden=8", "tcn.domain_frames=batch"]
    scalars, _ = trains_and_resumes_exactly(data, tmp_path, extra)
    assert {"train/domain_loss", "train/domain_accuracy"} <= set(scalars)
    # 2 sequences x 4 frames, anchor and positive: the TCN batch alone, no demonstrations drawn beside it
    assert scalars["train/frames"] == [16.0] * 4


def test_tcn_with_the_arrow_of_time_trains_logs_its_term_and_resumes_exactly(data, tmp_path):
    extra = ["tcn.align_weight=0", "tcn.order_weight=1", "tcn.order_gap=1", "tcn.order_hidden=8"]
    scalars, method = trains_and_resumes_exactly(data, tmp_path, extra)
    assert any(k.startswith("order.") for k in method)  # the head is saved with the method
    order = scalars["train/order_loss"]
    assert len(order) == 4 and all(np.isfinite(order)) and "train/order_accuracy" in scalars


def test_tcn_with_alignment_trains_logs_its_term_and_resumes_exactly(data, tmp_path):
    scalars, _ = trains_and_resumes_exactly(data, tmp_path, [])
    align = scalars["train/align_loss"]
    assert len(align) == 4 and all(np.isfinite(align))


def test_imported_human_and_robot_videos_are_demonstrations_to_align(tmp_path):
    from tcn_robot.cli import main
    from tcn_robot.video import write_video

    rng = np.random.default_rng(0)
    for body in ("human", "robot"):
        (tmp_path / body).mkdir()
        for seq in range(2):
            for v in range(2):
                frames = (rng.integers(0, 255, (24, 24, 3), dtype=np.uint8) for _ in range(8))
                write_video(tmp_path / body / f"{body}{seq}_view{v}.mp4", frames, 10)
        assert main(["import-videos", str(tmp_path / body), "--out", str(tmp_path / "lab"), "--embodiment", body]) == 0
    cache = FrameCache(Dataset.open(tmp_path / "lab"), progress=False)
    source = EmbodimentSequences(cache, 2, 4)
    assert {k: sorted(cache.episodes[i].name for i in v) for k, v in source.groups.items()} == {
        "human": ["human0", "human1"], "robot": ["robot0", "robot1"]}


def test_domain_confusion_trains_its_head_and_reverses_the_gradient_into_the_embeddings():
    """The head's gradient is plain cross-entropy's; the embeddings' is that of the same loss times -weight."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 4, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    loss = DomainConfusionLoss(4, 5, weight=0.3).double()
    plain = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)).double()
    plain.load_state_dict(loss.head.state_dict())
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    value, accuracy = loss(z1, labels)
    reference = torch.nn.functional.cross_entropy(plain(z2), labels)
    value.backward()
    reference.backward()
    assert torch.allclose(value, reference)
    assert torch.allclose(z1.grad, -0.3 * z2.grad)
    for mine, ref in zip(loss.head.parameters(), plain.parameters()):
        assert torch.allclose(mine.grad, ref.grad)
    assert accuracy == (plain(z).argmax(-1) == labels).double().mean()


def test_tcn_with_domain_confusion_keeps_its_head_logs_its_accuracy_and_resumes_exactly(data, tmp_path):
    extra = ["tcn.align_weight=0", "tcn.domain_weight=0.5", "tcn.domain_hidden=8"]
    cfg = load_config(None, [*SMALL, *extra, "train.steps=4"])
    train(cfg, data, tmp_path / "straight", "train-tcn")
    train(load_config(None, [*SMALL, *extra, "train.steps=2"]), data, tmp_path / "resumed", "train-tcn")
    train(cfg, data, tmp_path / "resumed", "train-tcn", resume=True)
    a, b = (load_checkpoint(tmp_path / f"{r}/checkpoints/last.pt") for r in ("straight", "resumed"))
    assert {k for k in a["method"] if k.startswith("domain.head.")} == {f"domain.head.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}
    for part in ("model", "method"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), k
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "straight/tb")).Reload()
    assert {"train/domain_loss", "train/domain_accuracy"} <= set(events.Tags()["scalars"])
    assert "train/align_loss" not in events.Tags()["scalars"]
    assert all(0 <= e.value <= 1 for e in events.Scalars("train/domain_accuracy"))
