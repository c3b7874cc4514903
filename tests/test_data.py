"""Recording, the episode format, validation of bad inputs, the frame cache and the datasets."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from tcn_robot import UserError
from tcn_robot.cli import main
from tcn_robot.data.cache import FrameCache
from tcn_robot.data.datasets import Clips, FrameAttributes, MultiViewTCNBatches, SingleViewTCNBatches
from tcn_robot.data.episodes import Dataset, load_episode
from tcn_robot.data.importer import import_videos
from tcn_robot.config import load_config, parse_mix
from tcn_robot.data.record import env_config, plan_episodes, record_dataset
from tcn_robot.envs import ATTRIBUTES, PourEnv, make_pour_config, run_demonstrator
from tcn_robot.io import TEMP_TAG, temp_owner
from tcn_robot.video import read_video, write_video

SMALL = {"episode_steps": 12, "num_particles": 12}
MIX = "human=0.5,robot=0.25,random=0.25"


def record(out, episodes=3, views=2, size=32, seed=0, **kw):
    return record_dataset(make_pour_config(**SMALL), Path(out), episodes, views, size, seed, MIX, **kw)


def decoded(root):
    ds = Dataset.open(root, strict=True)
    return {ep.name: np.stack([ep.read_view(v) for v in range(ep.num_views)]) for ep in ds.episodes}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted, unsharded recording of 4 episodes, decoded."""
    root = tmp_path_factory.mktemp("reference")
    record(root, episodes=4)
    return root, decoded(root)


def test_round_trip_matches_what_the_env_rendered(tmp_path):
    record(tmp_path, episodes=2)
    ds = Dataset.open(tmp_path, strict=True)
    cfg = env_config(make_pour_config(**SMALL), 2, 32)
    for ep in ds.episodes:
        env = PourEnv(cfg, embodiment=ep.meta["embodiment"])
        steps = run_demonstrator(ep.meta["demonstrator"], env, ep.meta["seed"])
        rendered, infos = [env.render_views()], [env.measurement.info()]
        for step in steps:
            rendered.append(env.render_views())
            infos.append(step.info)
        rendered = np.stack(rendered).transpose(1, 0, 2, 3, 4)  # (V, T, H, W, 3)
        video = np.stack([ep.read_view(v) for v in range(ep.num_views)]).astype(int)
        assert video.shape == rendered.shape == (2, SMALL["episode_steps"] + 1, 32, 32, 3)
        err = np.abs(video - rendered).mean(axis=(2, 3, 4))
        assert err.max() < 10, "lossy MP4, but close to what was rendered"
        states = ep.states()
        for key in ("fraction_in_bowl", "fraction_in_cup", *ATTRIBUTES):
            assert np.array_equal(states[key], [i[key] for i in infos]), key
        assert states["action"].shape == (SMALL["episode_steps"], 3)
        assert states["camera"].shape == (SMALL["episode_steps"] + 1, 2, 7)
        env.close()


def test_same_seed_gives_byte_identical_decoded_frames(tmp_path, reference):
    record(tmp_path, episodes=4)
    again = decoded(tmp_path)
    assert again.keys() == reference[1].keys()
    assert all(np.array_equal(again[k], reference[1][k]) for k in again)


def test_shard_union_equals_one_unsharded_recording(tmp_path, reference):
    record(tmp_path, episodes=4, shard="1/2")
    assert sorted(p.name for p in tmp_path.glob("ep*")) == ["ep00001", "ep00003"]
    record(tmp_path, episodes=4, shard="0/2")
    union = decoded(tmp_path)
    assert union.keys() == reference[1].keys()
    assert all(np.array_equal(union[k], reference[1][k]) for k in union)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [e["name"] for e in manifest["episodes"]] == sorted(union)


def test_resume_after_a_worker_is_killed_mid_episode(tmp_path):
    longer = {**SMALL, "episode_steps": 40}  # long enough to be caught mid-episode
    uninterrupted = tmp_path / "uninterrupted"
    quickstart = load_config(None).env  # the world `tcn-robot record` simulates without --config
    record_dataset(make_pour_config(quickstart, **longer), uninterrupted, 4, 2, 32, 0, MIX)
    reference = decoded(uninterrupted)
    out = tmp_path / "killed"
    cmd = [str(Path(sys.executable).with_name("tcn-robot")), "record", "--out", str(out), "--episodes", "4",
           "--views", "2", "--image-size", "32", "--workers", "2", "--demonstrator", MIX,
           *[f"env.{k}={v}" for k, v in longer.items()]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    victim = None
    while time.time() < deadline and victim is None:
        for tmp in out.glob(f".ep*{TEMP_TAG}*"):  # an episode in progress, named after its worker's pid
            victim = temp_owner(tmp.name)
            break
        time.sleep(0.005)
    assert victim is not None, "no episode was ever in progress"
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "run the same command again to resume" in err
    assert "Traceback" not in err
    assert list(out.glob(f".ep*{TEMP_TAG}*")), "the killed episode left its temporary folder"
    assert len(list(out.glob("ep*/meta.json"))) < 4
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert not list(out.glob(f".ep*{TEMP_TAG}*"))
    resumed = decoded(out)
    assert resumed.keys() == reference.keys()
    assert all(np.array_equal(resumed[k], reference[k]) for k in resumed)


def test_rerunning_keeps_complete_episodes_and_refuses_other_settings(tmp_path):
    record(tmp_path, episodes=2)
    before = {p.parent.name: p.stat().st_mtime_ns for p in tmp_path.glob("ep*/view0.mp4")}
    summary = record(tmp_path, episodes=3)
    assert summary["recorded_now"] == 1 and summary["episodes"] == 3
    after = {p.parent.name: p.stat().st_mtime_ns for p in tmp_path.glob("ep*/view0.mp4")}
    assert sorted(after) == ["ep00000", "ep00001", "ep00002"]
    assert {k: after[k] for k in before} == before, "complete episodes are not recorded again"
    with pytest.raises(UserError, match="other settings"):
        record(tmp_path, episodes=3, size=48)


def test_demonstrator_mix_keeps_its_proportions_in_every_prefix():
    mix = parse_mix(MIX)
    plans = plan_episodes(40, mix, seed=3)
    for n in (4, 10, 40):
        counts = {d: sum(p.demonstrator == d for p in plans[:n]) for d in mix}
        assert all(abs(counts[d] - mix[d] * n) <= 1.5 for d in mix), counts
    assert plan_episodes(10, mix, 3) == plans[:10]
    with pytest.raises(ValueError, match="unknown demonstrator"):
        parse_mix("human=1,alien=1")


def test_a_behaviour_mix_keeps_its_proportions_apart_from_the_demonstrators():
    mix = parse_mix(MIX)
    behaviours = parse_mix("bowl=1,jar=1,half=1", "record.behaviours", ("bowl", "jar", "half"))
    plans = plan_episodes(60, mix, 3, behaviours)
    assert [p.demonstrator for p in plans] == [p.demonstrator for p in plan_episodes(60, mix, 3)]  # unchanged by it
    assert all(p.behaviour is None for p in plan_episodes(5, mix, 3))
    for n in (6, 30, 60):
        counts = {b: sum(p.behaviour == b for p in plans[:n]) for b in behaviours}
        assert all(abs(c - n / 3) <= 1.5 for c in counts.values()), counts
    human = [p.behaviour for p in plans if p.demonstrator == "human"]
    assert len(set(human)) == 3  # every behaviour is demonstrated by each demonstrator, not one per demonstrator
    with pytest.raises(ValueError, match="unknown behaviour 'pour'"):
        parse_mix("pour=1", "record.behaviours", ("bowl", "half"))


# ----------------------------------------------------------------- bad inputs
@pytest.fixture
def dataset_copy(tmp_path, reference):
    root = tmp_path / "ds"
    shutil.copytree(reference[0], root, ignore=shutil.ignore_patterns(".cache", ".lock"))
    return root


def _break(root: Path, kind: str) -> str:
    ep = root / "ep00001"
    if kind == "truncated mp4":
        data = (ep / "view1.mp4").read_bytes()
        (ep / "view1.mp4").write_bytes(data[: len(data) // 2])
        return "view1.mp4"
    if kind == "empty mp4":
        (ep / "view0.mp4").write_bytes(b"")
        return "empty"
    if kind == "missing view":
        (ep / "view1.mp4").unlink()
        return "view1.mp4: missing"
    if kind == "views of unequal length":
        frames = read_video(ep / "view1.mp4")
        write_video(ep / "view1.mp4", frames[:-3], 20)
        return "unequal frame counts"
    if kind == "missing meta.json":
        (ep / "meta.json").unlink()
        return "meta.json: missing"
    if kind == "malformed meta.json":
        (ep / "meta.json").write_text("{not json")
        return "not valid JSON"
    if kind == "missing states.npz":
        (ep / "states.npz").unlink()
        return "states.npz: missing"
    raise AssertionError(kind)


BAD = ["truncated mp4", "empty mp4", "missing view", "views of unequal length", "missing meta.json",
       "malformed meta.json", "missing states.npz"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_episode_is_skipped_with_a_warning_or_fails_in_strict_mode(dataset_copy, kind, capsys):
    expected = _break(dataset_copy, kind)
    with pytest.warns(UserWarning, match="skipped 1 of 4 episodes") as w:
        ds = Dataset.open(dataset_copy)
    assert expected in str(w[0].message) and "ep00001" in str(w[0].message)
    assert [e.name for e in ds.episodes] == ["ep00000", "ep00002", "ep00003"]
    with pytest.raises(UserError, match="ep00001"):
        Dataset.open(dataset_copy, strict=True)
    assert main(["inspect", str(dataset_copy), "--strict"]) == 1
    out = capsys.readouterr().out
    assert "3 valid, 1 bad" in out and expected in out


def test_a_path_that_does_not_exist_is_one_clear_error(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main(["inspect", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "no such dataset folder" in err and "Traceback" not in err
    with pytest.raises(UserError, match="no such dataset folder"):
        Dataset.open(missing)


def test_load_episode_names_the_file_of_a_missing_episode(tmp_path):
    from tcn_robot.data.episodes import EpisodeError

    with pytest.raises(EpisodeError, match="no such episode folder"):
        load_episode(tmp_path / "ep9")


# ----------------------------------------------------------------- frame cache
def test_frame_cache_decodes_once_and_rebuilds_when_a_video_changes(dataset_copy, reference, monkeypatch):
    from tcn_robot.data import episodes

    calls = []
    real = episodes.Episode.read_view
    monkeypatch.setattr(episodes.Episode, "read_view", lambda self, v: calls.append((self.name, v)) or real(self, v))
    cache = FrameCache(Dataset.open(dataset_copy), progress=False)
    assert len(calls) == 8
    for ep, arr in zip(cache.episodes, cache.arrays):
        assert isinstance(arr, np.memmap) and np.array_equal(arr.transpose(1, 0, 2, 3, 4), reference[1][ep.name])
    FrameCache(Dataset.open(dataset_copy), progress=False)
    assert len(calls) == 8, "a fresh cache must not decode again"
    frames = read_video(dataset_copy / "ep00002" / "view0.mp4")
    write_video(dataset_copy / "ep00002" / "view0.mp4", frames[::-1].copy(), 20)
    cache = FrameCache(Dataset.open(dataset_copy), progress=False)
    assert calls[8:] == [("ep00002", 0), ("ep00002", 1)]
    assert np.array_equal(cache.arrays[2][:, 0], read_video(dataset_copy / "ep00002" / "view0.mp4"))


# ----------------------------------------------------------------- torch datasets
class CodedCache:
    """A stand-in cache whose pixels encode (episode, time, view), to check what samplers pick."""

    def __init__(self, episodes=3, frames=30, views=3):
        self.arrays = []
        for e in range(episodes):
            a = np.zeros((frames, views, 4, 4, 3), np.uint8)
            a[..., 0] = e
            a[..., 1] = np.arange(frames)[:, None, None, None]
            a[..., 2] = np.arange(views)[None, :, None, None]
            self.arrays.append(a)
        self.episodes = [type("E", (), {"num_views": views, "name": f"ep{e:05d}"})() for e in range(episodes)]
        self.dataset_root = "coded"

    def __len__(self):
        return len(self.arrays)


def test_multiview_batches_pair_two_views_at_the_same_time_with_unique_labels():
    batches = iter(MultiViewTCNBatches(CodedCache(), sequences=2, per_sequence=8, seed=0))
    for _ in range(20):
        b = next(batches)
        a, p = b["anchor"][:, 0, 0].numpy(), b["positive"][:, 0, 0].numpy()
        assert b["anchor"].shape == (16, 4, 4, 3)
        assert np.array_equal(a[:, 0], p[:, 0]) and np.array_equal(a[:, 1], p[:, 1]), "same episode, same time"
        assert np.all(a[:, 2] != p[:, 2]), "two different views"
        assert len(set(b["label"].tolist())) == 16
        assert np.array_equal(a[:, 1], b["time"].numpy()) and np.array_equal(a[:, 0], b["episode"].numpy())
        assert len(set(zip(a[:, 0], a[:, 1]))) == 16, "each label is one (episode, time)"


def test_singleview_batches_respect_the_positive_and_negative_radii():
    batches = iter(SingleViewTCNBatches(CodedCache(), sequences=3, per_sequence=10, pos_radius=2, neg_radius=6, seed=1))
    for _ in range(20):
        b = next(batches)
        a, p, n = (b[k][:, 0, 0].numpy().astype(int) for k in ("anchor", "positive", "negative"))
        assert np.all(a[:, 0] == p[:, 0]) and np.all(a[:, 0] == n[:, 0]) and np.all(a[:, 2] == p[:, 2]) and np.all(a[:, 2] == n[:, 2])
        dp, dn = np.abs(a[:, 1] - p[:, 1]), np.abs(a[:, 1] - n[:, 1])
        assert np.all((dp >= 1) & (dp <= 2)) and np.all(dn >= 6)


def test_ranks_draw_from_disjoint_episodes():
    cache = CodedCache(episodes=4)
    seen = [set(next(iter(MultiViewTCNBatches(cache, 2, 4, seed=0, rank=r, world_size=2)))["episode"].tolist()) for r in (0, 1)]
    assert seen[0] <= {0, 2} and seen[1] <= {1, 3}


def test_frame_attributes_and_clips_read_the_right_frames(reference):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cache = FrameCache(Dataset.open(reference[0]), progress=False)
    data = FrameAttributes(cache)
    assert len(data) == 4 * 2 * (SMALL["episode_steps"] + 1)
    frame, labels, i, t = data[37]
    states = cache.episodes[i].states()
    assert labels.tolist() == [int(states[a][t]) for a in ATTRIBUTES]
    assert np.array_equal(frame.numpy(), cache.arrays[i][t, data.index[37][1]])
    clips = Clips(cache, length=5, stride=4)
    clip, i, v, s = clips[5]
    assert clip.shape == (5, 32, 32, 3) and np.array_equal(clip.numpy(), cache.arrays[i][s : s + 5, v])


# ----------------------------------------------------------------- import
def _write_sequence(src, seq, views, frames, ext="mp4", size=(40, 30)):
    rng = np.random.default_rng(len(seq))
    for v in range(views):
        n = frames[v] if isinstance(frames, list) else frames
        write_video(src / f"{seq}_view{v}.{ext}", (rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8) for _ in range(n)), 15)


def test_import_videos_builds_episodes_and_reports_bad_sequences(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _write_sequence(src, "0", 2, 10)
    _write_sequence(src, "1", 2, 9)
    _write_sequence(src, "skewed", 2, [10, 8])
    _write_sequence(src, "gap", 1, 6)
    (src / "gap_view0.mp4").rename(src / "gap_view1.mp4")
    with pytest.warns(UserWarning, match="skipped"):
        s = import_videos(src, tmp_path / "ds", image_size=24)
    assert s["imported"] == 2 and s["skipped_bad"] == 2
    assert any("unequal length" in p and "skewed_view1.mp4: 8" in p for p in s["problems"])
    assert any("no view0" in p for p in s["problems"])
    ds = Dataset.open(tmp_path / "ds", strict=True)
    assert [(e.name, e.num_frames, e.image_size, e.meta["has_states"]) for e in ds.episodes] == [
        ("0", 10, (24, 24), False), ("1", 9, (24, 24), False)]
    with pytest.warns(UserWarning):
        s = import_videos(src, tmp_path / "ds", image_size=24, trim=True)
    assert s["imported"] == 1 and s["already_present"] == 2
    assert Dataset.open(tmp_path / "ds").episodes[2].num_frames == 8
    with pytest.raises(UserError, match="no videos named like"):
        import_videos(tmp_path / "ds", tmp_path / "other")


def test_paired_episodes_hold_the_human_views_then_the_robot_twin_views(tmp_path):
    record_dataset(make_pour_config(**SMALL), tmp_path, 1, 2, 32, 0, "paired=1")
    (ep,) = Dataset.open(tmp_path, strict=True).episodes
    assert ep.num_views == 4 and ep.meta["view_embodiments"] == ["human", "human", "robot", "robot"]
    assert ep.meta["cameras"][:2] == ep.meta["cameras"][2:]
    first = [ep.read_view(v)[0].astype(int) for v in range(4)]
    # the same camera sees the same scene (the hand differs from the arm): close, not identical
    assert 0 < np.abs(first[0] - first[2]).mean() < np.abs(first[0] - first[1]).mean()
