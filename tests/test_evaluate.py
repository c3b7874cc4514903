"""Evaluation metrics on hand-built embeddings where the answer is known, and the evaluate stage."""
import json

import numpy as np
import pytest

from tcn_robot.cli import main
from tcn_robot.data.record import record_dataset
from tcn_robot.envs import make_pour_config
from tcn_robot.evaluate.metrics import (alignment_error, alignment_tau, classification_error, cycle_consistency,
                                        embodiment_alignment_error,
                                        kendall_tau, linear_probe_error, spearman, view_alignment_errors)
from tcn_robot.config import RewardConfig
from tcn_robot.reward import demo_index, episode_tcn_rewards, tcn_reward


def curve(t, d=4, shift=0.0):
    """A smooth, injective curve through embedding space: frame t -> (d,)."""
    s = np.linspace(0, 1, t)[:, None]
    return np.concatenate([s, np.sin(3 * s + shift), np.cos(2 * s), s**2][:d], 1)


def test_perfect_embedding_has_zero_alignment_error_and_tau_one():
    e = np.stack([curve(50), curve(50) + 1e-4])  # two views, the same up to noise
    assert alignment_error(e) == 0.0
    assert alignment_tau(curve(50), curve(80)) == pytest.approx(1.0)
    assert cycle_consistency(curve(50), curve(50)) == 1.0


def test_embodiment_alignment_pairs_each_human_view_with_the_robot_view_of_its_camera():
    t = 40
    up = np.stack([np.linspace(0, 1, t), np.zeros(t)], 1)
    e = np.stack([up, up[::-1], up, up[::-1]])  # cameras 0 and 1 see time run in opposite directions
    assert embodiment_alignment_error(e, ["human", "human", "robot", "robot"]) == 0.0
    # had the human view of camera 0 been paired with the robot view of camera 1, the error would be large
    assert alignment_error(e[[0, 3]]) > 0.4
    assert embodiment_alignment_error(e[[0, 1, 3, 2]], ["human", "human", "robot", "robot"]) > 0.4
    assert embodiment_alignment_error(e, ["human"] * 4) is None and embodiment_alignment_error(e, ["robot"] * 4) is None


def one_way(a, b) -> float:
    """Mean |t - t_nn| / T of the frames of ``a`` (T, D), t_nn the nearest frame of ``b``, by brute force."""
    return float(np.abs(np.arange(len(a)) - ((a[:, None] - b[None]) ** 2).sum(-1).argmin(1)).mean() / len(a))


def test_alignment_error_by_view_names_the_camera_whose_frames_are_out_of_order():
    t = np.linspace(0, np.pi, 40)
    curve = np.stack([np.cos(t), np.sin(t)], 1)
    e = np.stack([curve, curve, curve[np.random.default_rng(0).permutation(40)]])
    by_view = view_alignment_errors(e)
    assert by_view == pytest.approx([np.mean([one_way(e[i], e[j]) for j in range(3) if j != i]) for i in range(3)])
    assert by_view[0] == by_view[1] < by_view[2] and np.mean(by_view) == pytest.approx(alignment_error(e))


def test_alignment_by_phase_splits_the_per_camera_figure_and_counts_frames_matched_across_the_pour():
    """benchmarks/alignment_phases.py: phases from a hand-built ``liquid_flowing``; in a view whose frames after the
    pour embed as the frames before it (a camera that cannot see what the pour left), the error sits in the ``after``
    phase, every ``after`` frame is matched before the pour, and the phases' errors add up to ``view_alignment_errors``."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("alignment_phases", Path(__file__).resolve().parents[1] / "benchmarks/alignment_phases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flowing = np.zeros(30, bool)
    flowing[10:15] = True
    phase = module.pour_phases(flowing)
    assert phase.tolist() == [0] * 10 + [1] * 5 + [2] * 15 and module.pour_phases(np.zeros(5, bool)) is None
    seen = np.stack([np.cos(np.linspace(0, np.pi, 30)), np.sin(np.linspace(0, np.pi, 30))], 1)  # an injective path
    blind = seen.copy()
    blind[15:] = seen[14 - np.arange(15)]  # after the pour: the frames before it, in reverse (frame 15 looks like 14)
    e = np.stack([seen, blind])
    errors, counts = module.phase_alignment(e, phase)
    frames = counts.sum(2)
    assert frames.tolist() == [[10, 5, 15], [10, 5, 15]]
    assert (errors.sum(1) / frames.sum(1)) == pytest.approx(view_alignment_errors(e))
    assert errors[1, 0] == 0 and errors[1, 1] == 0 and errors[1, 2] > 0  # the blind view's after frames only
    assert counts[1, 2, 0] == 10 and counts[1, 2, 1] == 5  # matched to frames 14..0: 14..10 pouring, 9..0 before


def test_constant_embedding_gives_chance_alignment_error():
    """Every frame ties; argmin picks frame 0: the error is mean_t t / T = (T - 1) / (2T)."""
    t = 40
    assert alignment_error(np.ones((2, t, 3))) == pytest.approx((t - 1) / (2 * t))


def test_reversed_time_gives_tau_minus_one_and_shuffled_gives_about_zero():
    assert alignment_tau(curve(30), curve(30)[::-1]) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    taus = [alignment_tau(curve(60), curve(60)[rng.permutation(60)]) for _ in range(20)]
    assert abs(np.mean(taus)) < 0.1
    # a shuffled second view loses the alignment: about a third of the sequence off on average
    errs = [alignment_error(np.stack([curve(60), curve(60)[rng.permutation(60)]])) for _ in range(20)]
    assert np.mean(errs) == pytest.approx(1 / 3, abs=0.05)


def test_kendall_and_spearman_against_known_values():
    assert kendall_tau([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # tau-b with a tie: x = 1,2,3 ; y = 1,1,2 -> (concordant 2 - discordant 0) / sqrt(3 * 2)
    assert kendall_tau([1, 2, 3], [1, 1, 2]) == pytest.approx(2 / np.sqrt(6))
    assert spearman([10, 20, 30], [3, 2, 1]) == pytest.approx(-1.0)


def test_classification_error_counts_empty_classes_as_misses():
    # one attribute, classes 0 and 1 among the queries; the reference holds only class 0 frames
    q = np.array([[0.0], [1.0], [2.0], [3.0]])
    ql = np.array([[0], [0], [1], [1]])
    r = q + 0.1
    rl = np.array([[0], [0], [0], [0]])
    out = classification_error(q, ql, [0, 0, 0, 0], r, rl, [1, 1, 1, 1])
    # class 0: recall 1; class 1: never retrieved -> recall 0 (the official code would skip it and report 0% error)
    assert out["mean"] == pytest.approx(0.5)


def test_classification_takes_neighbours_from_other_sequences_only():
    q = np.array([[0.0], [5.0]])
    ql = np.array([[1], [0]])
    r = np.array([[0.0], [0.1], [5.0]])  # the exact match of query 0 is in its own sequence
    rl = np.array([[1], [0], [0]])
    out = classification_error(q, ql, [7, 8], r, rl, [7, 9, 9])
    # query 0 (class 1) must use r[1] (class 0): miss; query 1 (class 0) hits r[2] -> mean recall (0 + 1) / 2
    assert out["mean"] == pytest.approx(0.5)


def test_linear_probe_separates_separable_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = np.stack([(x[:, 0] > 0).astype(int), (x[:, 1] + x[:, 2] > 0).astype(int)], 1)
    out = linear_probe_error(x[:100], y[:100], x[100:], y[100:])
    assert out["mean"] < 0.1
    noise = linear_probe_error(x[:100], rng.integers(0, 2, (100, 2)), x[100:], rng.integers(0, 2, (100, 2)))
    assert noise["mean"] > 0.3


def test_tcn_reward_formula_and_time_alignment():
    w = np.zeros((3, 2))
    v = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    r = tcn_reward(w, v, a=0.5, b=2.0, g=1e-3).numpy()
    assert r == pytest.approx([-2 * np.sqrt(1e-3), -0.5 * 25 - 2 * np.sqrt(25.001), -0.5 - 2 * np.sqrt(1.001)])
    assert demo_index(np.arange(5), 5, 9).tolist() == [0, 2, 4, 6, 8]
    assert demo_index(np.arange(5), 5, 3).tolist() == [0, 0, 1, 2, 2]


def test_the_alignment_window_forgives_a_lag_of_up_to_its_width():
    demo = np.eye(12) * 2.0  # every demo frame far from every other
    lagged = np.concatenate([demo[:1], demo[:1], demo[:1], demo[:-3]])  # the episode runs 3 frames behind
    perfect = -0.5 * np.sqrt(1e-3)  # R at zero distance with a = b = 0.5
    exact = episode_tcn_rewards(lagged, demo, RewardConfig(window=0))
    assert exact[3:] == pytest.approx(np.full(9, -0.5 * 8 - 0.5 * np.sqrt(8.001)))  # ||2e_i - 2e_j||^2 = 8
    assert episode_tcn_rewards(lagged, demo, RewardConfig(window=3))[3:] == pytest.approx(np.full(9, perfect))
    assert episode_tcn_rewards(lagged, demo, RewardConfig(window=2))[3:] == pytest.approx(exact[3:])
    ahead = demo[3:]  # 3 frames ahead, 9 frames long: time rescaling maps it onto the 12-frame demo
    r = episode_tcn_rewards(ahead, demo[:9], RewardConfig(window=3))
    assert r[:6] == pytest.approx(np.full(6, perfect)) and np.all(r[6:] < perfect)


def test_evaluate_writes_metrics_report_and_figures(tmp_path):
    data = tmp_path / "data"
    record_dataset(make_pour_config(num_particles=12), data, 6, 2, 32, 5, "paired=0.34,human=0.33,random=0.33")
    out = tmp_path / "eval"
    rc = main(["evaluate", "--baseline", "random", "--baseline", "random-features", "--baseline", "pixels", "--data", str(data),
               "--out", str(out), "model.image_size=32", "model.width=8", "evaluate.probe_steps=20"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())["encoders"]
    assert set(m) == {"random init", "random features", "pixels 16x16"}
    for name, r in m.items():
        assert 0 <= r["alignment_error"] <= 1 and 0 <= r["classification_error_same_view"] <= 1
        assert 0 <= r["embodiment_alignment_error"] <= 1  # the paired episodes: human and robot views of one camera
        for f in r["plots"].values():
            assert (out / f).stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "random init" in report and "pixels 16x16" in report


def test_the_random_features_baseline_is_not_degenerate_where_random_init_is():
    from tcn_robot.config import ModelConfig
    from tcn_robot.encoders import baseline_encoder

    frames = np.random.default_rng(0).integers(0, 255, (64, 32, 32, 3), dtype=np.uint8)
    frames[:32, :16] = 0  # two kinds of frame
    model = ModelConfig(image_size=32, width=8)
    cosines = {}
    for kind in ("random", "random-features"):
        z = baseline_encoder(kind, model, 0, "cpu", reference=frames)(frames)
        assert np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
        cosines[kind] = float((z @ z.T)[np.triu_indices(64, 1)].mean())
    assert cosines["random"] > 0.999 and cosines["random-features"] < 0.5, cosines
    again = baseline_encoder("random-features", model, 0, "cpu", reference=frames)(frames[:5])
    assert np.allclose(again, baseline_encoder("random-features", model, 0, "cpu", reference=frames)(frames)[:5], atol=1e-5)


def test_reward_ordering_compares_only_the_groups_present():
    from tcn_robot.evaluate.run import _ordered

    order = ("successful", "failed", "random")
    assert _ordered({"successful": -0.5, "failed": -1.0, "random": -1.5}, order) is True
    assert _ordered({"successful": -0.5, "failed": -2.0, "random": -1.5}, order) is False
    assert _ordered({"successful": -0.5, "random": -1.5}, order) is True  # no failed demonstration
    assert _ordered({"random": -1.5}, order) is None


def test_a_random_exploration_that_poured_is_not_a_successful_demonstration():
    from tcn_robot.evaluate.run import Evaluation

    ev = Evaluation.__new__(Evaluation)  # only the episode metadata matters here
    ev.metas = [{"demonstrator": "human", "embodiment": "human", "is_success": True},
                {"demonstrator": "robot", "embodiment": "robot", "is_success": False},
                {"demonstrator": "random", "embodiment": "robot", "is_success": True}]
    groups = {k: v.tolist() for k, v in ev._groups([0, 1, 2]).items()}
    assert groups["successful"] == [True, False, False]
    assert groups["failed"] == [False, True, False]
    assert groups["random"] == [False, False, True]
    assert groups["successful_human"] == [True, False, False] and groups["successful_robot"] == [False, False, False]


def test_reward_rank_correlation_is_undefined_when_every_episode_poured_the_same():
    from tcn_robot.config import Config
    from tcn_robot.evaluate.run import Evaluation

    cfg = Config()
    ev = Evaluation.__new__(Evaluation)  # the ground truth and the settings are all the method reads
    ev.cfg, ev.reward, ev.demo_name = cfg.evaluate, cfg.reward, "demo"
    ev.metas = [{"demonstrator": "human", "embodiment": "human", "is_success": False}] * 4
    rng = np.random.default_rng(0)
    embs = [rng.normal(size=(2, 6, 4)) for _ in range(4)]
    demo = rng.normal(size=(2, 6, 4))
    names = ["a", "b", "c", "d"]
    ev.states = [{"fraction_in_bowl": np.zeros(6)} for _ in range(4)]
    same = ev._reward_quality(embs, demo, names)["reward_same_view"]
    assert same["spearman_return_vs_poured"] is None and same["kendall_return_vs_poured"] is None
    finals = [0.0, 0.2, 0.5, 1.0]
    ev.states = [{"fraction_in_bowl": np.full(6, f)} for f in finals]
    returns = [episode_tcn_rewards(e[cfg.evaluate.agent_view], demo[cfg.evaluate.agent_view], cfg.reward).mean() for e in embs]
    same = ev._reward_quality(embs, demo, names)["reward_same_view"]
    assert same["spearman_return_vs_poured"] == pytest.approx(spearman(returns, finals))


def _naive_dtw(u, v):
    """Every monotone path from (0, 0) to the end, by recursion: the least sum of distances."""
    from functools import lru_cache

    d = np.linalg.norm(u[:, None] - v[None], axis=-1)

    @lru_cache(None)
    def best(i, j):
        if i == 0 and j == 0:
            return d[0, 0]
        prev = [best(a, b) for a, b in ((i - 1, j), (i, j - 1), (i - 1, j - 1)) if a >= 0 and b >= 0]
        return d[i, j] + min(prev)

    return best(len(u) - 1, len(v) - 1) / (len(u) + len(v))


def test_dtw_distance_matches_the_recursion_over_every_path():
    from tcn_robot.evaluate.metrics import dtw_distance

    rng = np.random.default_rng(0)
    for t, s in ((1, 1), (3, 5), (6, 4), (7, 7)):
        u, v = rng.normal(size=(t, 3)), rng.normal(size=(s, 3))
        assert dtw_distance(u, v) == pytest.approx(_naive_dtw(u, v), rel=1e-5)
    # a sequence played at another pace is at distance 0 from itself
    u = rng.normal(size=(5, 2))
    assert dtw_distance(u, np.repeat(u, 2, axis=0)) == pytest.approx(0.0, abs=1e-6)


def test_behaviour_retrieval_counts_nearest_neighbours_by_behaviour():
    from tcn_robot.evaluate.metrics import behaviour_retrieval

    rng = np.random.default_rng(1)
    base = {"bowl": rng.normal(size=(8, 4)), "jar": rng.normal(size=(8, 4)) + 5}
    seqs = [base[b] + 0.01 * rng.normal(size=(8, 4)) for b in ("bowl", "bowl", "jar", "jar", "jar")]
    seqs.append(base["jar"][::2])  # labelled bowl but shaped like the jar pours: retrieved as jar
    r = behaviour_retrieval(seqs, ["bowl", "bowl", "jar", "jar", "jar", "bowl"], ["bowl", "jar"])
    assert r["confusion"] == [[2, 1], [0, 3]] and r["accuracy"] == pytest.approx(5 / 6) and r["episodes"] == 6
    assert "same_place" not in r
    places = [1, -1, 1, 1, -1, -1]
    nearest = [min((j for j in range(6) if j != i), key=lambda j: _naive_dtw(seqs[i], seqs[j])) for i in range(6)]
    same = np.mean([places[i] == places[j] for i, j in enumerate(nearest)])
    assert behaviour_retrieval(seqs, ["bowl", "bowl", "jar", "jar", "jar", "bowl"], ["bowl", "jar"], places)["same_place"] == pytest.approx(same)


def test_novel_data_figures_equal_those_of_evaluating_that_set_alone(tmp_path):
    from tcn_robot.envs import CameraRange

    data, other = tmp_path / "data", tmp_path / "other"
    record_dataset(make_pour_config(num_particles=12), data, 4, 2, 32, 5, "human=0.5,robot=0.5")
    cams = [CameraRange(yaw=(100.0, 110.0), pitch=(-50.0, -45.0)), CameraRange(yaw=(250.0, 260.0), pitch=(-12.0, -8.0))]
    record_dataset(make_pour_config(num_particles=12, cameras=cams), other, 4, 2, 32, 5, "human=0.5,robot=0.5")
    common = ["--baseline", "pixels", "model.image_size=32", "evaluate.probe_steps=20"]
    assert main(["evaluate", "--data", str(data), "--novel-data", f"far={other}", "--out", str(tmp_path / "e1"), *common]) == 0
    assert main(["evaluate", "--data", str(other), "--out", str(tmp_path / "e2"), *common]) == 0
    both = json.loads((tmp_path / "e1" / "metrics.json").read_text())["encoders"]["pixels 16x16"]
    alone = json.loads((tmp_path / "e2" / "metrics.json").read_text())["encoders"]["pixels 16x16"]
    for key in ("alignment_error", "classification_error_same_view", "classification_error_cross_view"):
        assert both["novel"]["far"][key] == pytest.approx(alone[key])
    report = (tmp_path / "e1" / "report.md").read_text()
    ratio = alone["alignment_error"] / both["alignment_error"]
    assert "## Cameras never trained on" in report and f"({ratio:.2f}x)" in report
    # by camera: each view against the other (two views: one pair each way), their mean the alignment error
    for figures in (both, both["novel"]["far"]):
        assert len(figures["alignment_error_by_view"]) == 2
        assert np.mean(figures["alignment_error_by_view"]) == pytest.approx(figures["alignment_error"])
    row = f"| pixels 16x16 | far | {100 * both['novel']['far']['alignment_error_by_view'][0]:.1f} / "
    assert row in report
    # the same scenes by two rigs: each view of the other rig against this rig's agent view (view 0), by hand
    import torch
    from tcn_robot.config import ModelConfig
    from tcn_robot.data.cache import FrameCache
    from tcn_robot.data.episodes import Dataset
    from tcn_robot.encoders import baseline_encoder

    enc = baseline_encoder("pixels", ModelConfig(image_size=32), 0, torch.device("cpu"))
    embed = lambda path: [np.stack([enc(np.ascontiguousarray(a[:, v])) for v in range(a.shape[1])])
                          for a in FrameCache(Dataset.open(path), progress=False).arrays]

    naive = lambda a, b: (one_way(a, b) + one_way(b, a)) / 2  # both directions, as a share of the episode

    mine, theirs = embed(data), embed(other)
    assert both["alignment_error_by_view"] == pytest.approx([np.mean([one_way(e[v], e[1 - v]) for e in mine]) for v in range(2)])
    assert both["agent_alignment_error"] == pytest.approx(np.mean([naive(e[0], e[1]) for e in mine]))
    assert both["novel"]["far"]["agent_alignment_error"] == pytest.approx(
        np.mean([naive(e[0], o[v]) for e, o in zip(mine, theirs) for v in range(2)]))
