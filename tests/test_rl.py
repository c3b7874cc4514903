"""The learned reward wrapper against per-env computation, and train-rl / replay end to end."""
import json
import zipfile

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from tcn_robot.cli import main
from tcn_robot.data.record import record_dataset
from tcn_robot.envs import PourEnv, make_pour_config
from tcn_robot.encoders import Encoder, baseline_encoder
from tcn_robot.config import ModelConfig, RewardConfig
from tcn_robot.rl.policy_io import NORMALIZATION, entry, read_replay
from tcn_robot.reward import LearnedRewardVecEnv, demo_index, goal_reward, make_score, tcn_reward
from tcn_robot.rl.envs import AppendEmbedding, FrameInInfo

STEPS = 5
RCFG = RewardConfig(window=2)  # the demo has 9 frames: a window that does not cover all of them
ENV = {"episode_steps": STEPS, "num_particles": 10, "image_size": 32}


def make():
    return lambda: FrameInInfo(PourEnv(make_pour_config(**ENV), render_mode="rgb_array"))


def rewarded(n: int, enc, demo, kind: str = "tcn", cfg: RewardConfig = RCFG, cls=DummyVecEnv):
    """``n`` pouring envs whose reward is ``kind`` against the demo embeddings."""
    return LearnedRewardVecEnv(cls([make()] * n), enc, make_score(kind, demo, cfg, STEPS))


@pytest.fixture(scope="module")
def parts():
    enc = baseline_encoder("pixels", ModelConfig(), 0, "cpu", pixels=4)
    demo = np.random.default_rng(0).uniform(0, 1, size=(9, 48))
    return enc, demo


def rewrite_entry(path, name: str, data: bytes) -> None:
    """Replace one entry of a zip."""
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    entries[name] = data
    with zipfile.ZipFile(path, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)


def actions(n_envs, steps, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(steps, n_envs, 3)).astype(np.float32)


def naive_orca(frames_emb: np.ndarray, demo: np.ndarray, temperature: float = 1.0) -> float:
    """ORCA's reward of the last frame, from scratch: the whole coverage matrix of the episode so far
    (frames_emb (t + 1, D), the reset frame first), element by element, as ORCA's compute_orca_reward."""
    def cosdist(a, b):
        return 1 - float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))

    P = [[np.exp(-cosdist(w, v) / temperature) for v in demo] for w in frames_emb]
    T, Td = len(P), len(demo)
    cov = [[0.0] * Td for _ in range(T)]
    cov[0][0] = P[0][0]
    for i in range(1, T):
        cov[i][0] = max(cov[i - 1][0], P[i][0])
    for j in range(1, Td):
        cov[0][j] = cov[0][j - 1] * P[0][j]
    for i in range(1, T):
        for j in range(1, Td - 1):
            cov[i][j] = max(cov[i - 1][j], cov[i][j - 1] * P[i][j])
        cov[i][Td - 1] = cov[i][Td - 2] * P[i][Td - 1]
    return cov[T - 1][Td - 1]


def naive_progress(frames_emb: np.ndarray, demo: np.ndarray, quantile: float) -> float:
    """The ordered progress of the episode so far, from scratch: over every stretch of demo frames and every
    in-order assignment of them to the frames so far (a later demo frame to the same or a later frame), the
    largest total margin (the frame's distance to the demo at the quantile of its distances to every demo
    frame, minus its distance to the demo frame it is matched to), by recursion; per demo frame."""
    def cosdist(a, b):
        return 1 - float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))

    T, Td = len(frames_emb), len(demo)
    dist = [[cosdist(frames_emb[i], demo[j]) for j in range(Td)] for i in range(T)]
    level = [float(np.quantile(dist[i], quantile)) for i in range(T)]
    best = {}

    def stretch(i, j):  # the best stretch ending at demo frame j with frame j matched to a frame <= i
        if (i, j) not in best:
            here = max(stretch(i, j - 1) if j else 0.0, 0.0) + level[i] - dist[i][j]
            best[i, j] = here if i == 0 else max(stretch(i - 1, j), here)
        return best[i, j]

    return max(0.0, max(stretch(T - 1, j) for j in range(Td))) / Td


def per_env_rewards(enc, demo, kind, seed, acts):
    """The reward of one env computed alone: step, render the agent view, embed, score."""
    env = PourEnv(make_pour_config(**ENV))
    env.reset(seed=seed)
    seen = [enc(env.world.render([env.cfg.agent_view])[0][None])[0]]
    out, t = [], 0
    for a in acts:
        _, _, term, trunc, _ = env.step(a)
        t += 1
        w = enc(env.world.render([env.cfg.agent_view])[0][None])
        seen.append(w[0])
        if kind == "tcn":  # the best over the demo frames within the window around the matched one
            i = int(demo_index(t, STEPS + 1, len(demo)))
            near = range(max(0, i - RCFG.window), min(len(demo), i + RCFG.window + 1))
            out.append(max(float(tcn_reward(w, demo[j]).numpy()[0]) for j in near))
        elif kind == "orca":
            out.append(naive_orca(np.array(seen), demo))
        elif kind == "progress":  # the increase of the progress over the step
            out.append(naive_progress(np.array(seen), demo, RCFG.quantile) - naive_progress(np.array(seen[:-1]), demo, RCFG.quantile))
        else:
            out.append(float(goal_reward(w, demo[-1], np.linalg.norm(demo[0] - demo[-1])).numpy()[0]))
        if term or trunc:
            env.reset()
            seen = [enc(env.world.render([env.cfg.agent_view])[0][None])[0]]
            t = 0
    return np.array(out, np.float32)


@pytest.mark.parametrize("kind", ["tcn", "goal", "orca", "progress"])
def test_batched_rewards_equal_per_env_rewards_across_episode_ends(parts, kind):
    enc, demo = parts
    acts = actions(3, 2 * STEPS + 2)
    if kind == "progress":  # a demo that env 0 replays frame for frame: its progress climbs, the others' do not
        env = PourEnv(make_pour_config(**ENV))
        env.reset(seed=100)
        frames = [env.world.render([0])[0]] + [env.step(a)[4] and env.world.render([0])[0] for a in acts[:STEPS, 0]]
        pixels, start = enc, enc(frames[0][None])[0]
        offset = np.random.default_rng(1).normal(size=start.shape)
        # small scenes change few pixels per step: magnify the change from env 0's first frame
        enc = Encoder("magnified pixels", lambda f: (pixels(f) - start) * 300 + offset)
        demo = enc(np.stack(frames))
    venv = rewarded(3, enc, demo, kind)
    venv.seed(100)
    venv.reset()
    got, env_rewards, dones_seen = [], [], []
    for a in acts:
        _, r, dones, infos = venv.step(a)
        got.append(r)
        env_rewards.append([i["env_reward"] for i in infos])
        dones_seen.append(dones)
        for d, i in zip(dones, infos):
            assert ("terminal_observation" in i) == d and i["frame"].shape == (32, 32, 3)
    got = np.array(got)
    assert np.array(dones_seen)[[STEPS - 1, 2 * STEPS - 1]].all(), "the run must cross episode ends"
    for i in range(3):
        assert np.allclose(got[:, i], per_env_rewards(enc, demo, kind, 100 + i, acts[:, i]), atol=1e-5)
    assert np.ptp(got) > 0, "a reward that never changes tests nothing"
    assert not np.allclose(np.array(env_rewards), got), "the env's own reward is kept apart in info"


def test_a_clip_encoder_reward_reads_each_episodes_own_past_frames():
    """With a clip encoder (context 3, stride 2), the streamed reward of every step equals the encoder's
    causal embedding of that env's episode so far (its reset frame repeated before it), scored alone."""
    import torch

    from tcn_robot.encoders import network_encoder
    from tcn_robot.models import EmbeddingNet

    torch.manual_seed(0)
    net = EmbeddingNet(ModelConfig(image_size=32, width=8, head_channels=8, hidden=16, embedding_dim=6, context=3, context_stride=2))
    net.train()
    for m in net.modules():  # non-trivial batch-norm statistics, so that embeddings differ between frames
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(1e-4, 1e-3)
    enc = network_encoder("clip", net.eval())
    demo = np.random.default_rng(0).normal(size=(9, 6))
    acts = actions(2, STEPS + 4, seed=3)
    venv = rewarded(2, enc, demo)
    venv.seed(50)
    venv.reset()
    got = np.array([venv.step(a)[1] for a in acts])
    for i in range(2):
        env = PourEnv(make_pour_config(**ENV))
        env.reset(seed=50 + i)
        frames, want = [env.world.render([0])[0]], []
        for k, a in enumerate(acts[:, i]):
            _, _, term, _, _ = env.step(a)
            frames.append(env.world.render([0])[0])
            t = len(frames) - 1
            w = enc(np.stack(frames))[-1]
            j = int(demo_index(t, STEPS + 1, len(demo)))
            near = range(max(0, j - RCFG.window), min(len(demo), j + RCFG.window + 1))
            want.append(max(float(tcn_reward(w[None], demo[m]).numpy()[0]) for m in near))
            if term:
                env.reset()
                frames = [env.world.render([0])[0]]
        assert np.allclose(got[:, i], want, atol=1e-5)
    assert np.ptp(got) > 0


def test_learned_return_logger_sums_each_episode_of_each_env(parts):
    from tcn_robot.rl.callbacks import LearnedReturnLogger

    enc, demo = parts
    acts = actions(2, 2 * STEPS + 1, seed=1)
    venv = rewarded(2, enc, demo)
    venv.seed(200)
    venv.reset()
    logger = LearnedReturnLogger()
    for a in acts:
        _, _, dones, infos = venv.step(a)
        logger.locals = {"infos": infos, "dones": dones}
        logger._on_step()
    expected = []
    for k in range(2):  # the logger sees the episodes in the order they end: env 0, env 1, env 0, env 1
        for i in range(2):
            expected.append(per_env_rewards(enc, demo, "tcn", 200 + i, acts[:, i])[k * STEPS:(k + 1) * STEPS].sum())
    assert np.allclose(list(logger.returns), expected, atol=1e-4)


def test_subprocess_envs_give_the_same_rewards(parts):
    enc, demo = parts
    acts = actions(2, STEPS + 2, seed=1)
    out = []
    for cls in (DummyVecEnv, SubprocVecEnv):
        venv = rewarded(2, enc, demo, cls=cls)
        venv.seed(7)
        venv.reset()
        out.append(np.array([venv.step(a)[1] for a in acts]))
        venv.close()
    assert np.array_equal(out[0], out[1])


def test_appended_embeddings_are_the_current_frame_and_the_demo_at_t(parts):
    enc, demo = parts
    venv = AppendEmbedding(rewarded(2, enc, demo, cfg=RewardConfig()), demo, STEPS)
    venv.seed(3)
    obs = venv.reset()
    d = demo.shape[1]
    assert obs.shape == (2, 18 + 2 * d) and venv.observation_space.shape == (18 + 2 * d,)
    assert np.allclose(obs[:, -d:], demo[0])
    inner = venv.venv.venv.envs
    for k, a in enumerate(actions(2, STEPS)):
        obs, _, dones, infos = venv.step(a)
        if dones.any():  # new episodes: the reset frame and the demo's first frame; the terminal obs keeps the last frame
            for i in range(2):
                assert np.allclose(obs[i, -d:], demo[0])
                assert np.allclose(obs[i, 18:18 + d], enc(inner[i].unwrapped.render_views()[0][None])[0], atol=1e-6)
                assert np.allclose(infos[i]["terminal_observation"][-d:], demo[demo_index(STEPS, STEPS + 1, len(demo))])
        else:
            assert np.allclose(obs[:, -d:], demo[demo_index(k + 1, STEPS + 1, len(demo))])


def test_a_separate_observation_encoder_changes_the_observation_not_the_reward(parts):
    enc, demo = parts
    other = baseline_encoder("random", ModelConfig(embedding_dim=8), 0, "cpu")
    other_demo = np.random.default_rng(1).normal(size=(9, 8))
    acts = actions(2, STEPS + 2, seed=2)
    plain = rewarded(2, enc, demo)
    seen = AppendEmbedding(rewarded(2, enc, demo), other_demo, STEPS, encoder=other)
    assert seen.observation_space.shape == (18 + 16,)
    for venv in (plain, seen):
        venv.seed(11)
    plain.reset()
    obs = seen.reset()
    assert np.allclose(obs[:, -8:], other_demo[0])
    for a in acts:
        _, r_plain, _, _ = plain.step(a)
        obs, r_seen, dones, infos = seen.step(a)
        assert np.array_equal(r_plain, r_seen)
        for i in range(2):
            frame = seen.venv.venv.envs[i].unwrapped.render_views()[0][None]
            assert np.allclose(obs[i, 18:26], other(frame)[0], atol=1e-5)
            if dones[i]:
                assert infos[i]["terminal_observation"].shape == (34,)


def test_goal_reward_is_scaled_distance_to_the_last_demo_frame():
    demo = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    assert goal_reward(np.array([[2.0, 1.0]]), demo[-1], 2.0).numpy() == pytest.approx([-0.5])


@pytest.fixture(scope="module")
def demo_episode(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    record_dataset(make_pour_config(episode_steps=20, num_particles=10), root, 1, 2, 32, 0, "human=1")
    return root / "ep00000"


def test_train_rl_and_replay_run_end_to_end_on_a_tiny_budget(tmp_path, demo_episode):
    run = tmp_path / "run"
    common = ["env.episode_steps=20", "env.num_particles=10", "env.image_size=32", "rl.eval_every=128",
              "rl.eval_episodes=1", "rl.ppo.n_steps=64", "rl.ppo.batch_size=64", "rl.ppo.n_epochs=1"]
    assert main(["train-rl", "--out", str(run), "--reward", "tcn", "--encoder", "pixels", "--demo", str(demo_episode),
                 "--demo-view", "1", "--steps", "256", "--n-envs", "2", *common]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["steps"] == 256 and m["reward"] == "tcn" and m["demo_view"] == 1
    for f in ("config.yaml", "checkpoints/best.zip", "checkpoints/last.zip", "eval.json", "eval_curve.png"):
        assert (run / f).exists(), f
    assert json.loads(entry(run / "checkpoints/last.zip", NORMALIZATION))["count"] > 0  # the return statistics, in the policy's zip
    events = list((run / "tb").rglob("events.out.tfevents.*"))
    assert events and any(b"rollout/learned_ep_rew_mean" in e.read_bytes() for e in events)
    assert main(["train-rl", "--out", str(run), "--steps", "384", "--resume", "--reward", "tcn", "--encoder", "pixels",
                 "--demo", str(demo_episode), "--demo-view", "1", "--n-envs", "2", *common]) == 0
    assert json.loads((run / "metrics.json").read_text())["steps"] == 384
    for policy in ("trained", "random"):
        out = tmp_path / f"replay_{policy}"
        assert main(["replay", "--run", str(run), "--episodes", "1", "--out", str(out), "--policy", policy]) == 0
        r = json.loads((out / "metrics.json").read_text())
        assert r["policy"] == policy and len(r["episodes"]) == 1 and r["episodes"][0]["learned_return"] is not None
        from tcn_robot.video import read_video

        video = read_video(out / "episode_0.mp4")
        assert video.shape == (21, 32, 32 * 4, 3)  # three cameras and the demo
        assert (out / "episode_0.png").stat().st_size > 0


def test_normalized_observations_are_evaluated_resumed_and_replayed_with_the_training_statistics(tmp_path, demo_episode, capsys):
    run = tmp_path / "run"
    args = ["train-rl", "--out", str(run), "--reward", "tcn", "--encoder", "pixels", "--demo", str(demo_episode), "--n-envs", "2",
            "env.episode_steps=20", "env.num_particles=10", "env.image_size=32", "rl.append_embedding=true",
            "rl.normalize_obs=true", "rl.eval_every=128", "rl.eval_episodes=2", "rl.ppo.n_steps=64", "rl.ppo.batch_size=64",
            "rl.ppo.n_epochs=1"]
    assert main([*args, "--steps", "128"]) == 0
    best = run / "checkpoints" / "best.zip"
    stats = json.loads(entry(best, NORMALIZATION))["obs"]
    assert len(stats["mean"]) == len(stats["var"]) == 18 + 2 * 16 * 16 * 3  # state + the pixel embeddings of agent and demo
    assert abs(stats["count"] - 2 * (1 + 128 // 2)) < 1  # every training observation: the first resets, then 64 steps of 2 envs
    assert min(stats["var"][:7]) > 0  # the joints moved
    # the saved policy replayed on the evaluation's seeds sees what the evaluation saw: the same learned returns
    evaluated = json.loads((run / "eval.json").read_text())[-1]
    assert main(["replay", "--run", str(run), "--episodes", "2", "--out", str(tmp_path / "replay")]) == 0
    replayed = json.loads((tmp_path / "replay" / "metrics.json").read_text())["episodes"]
    assert np.mean([e["learned_return"] for e in replayed]) == pytest.approx(evaluated["return_mean"], abs=1e-4)
    assert main([*args, "--steps", "192", "--resume"]) == 0  # the statistics continue from the saved ones
    assert json.loads(entry(run / "checkpoints" / "last.zip", NORMALIZATION))["obs"]["count"] > stats["count"] + 64
    broken = json.loads(entry(best, NORMALIZATION))
    broken["obs"]["mean"] = broken["obs"]["mean"][:5]
    rewrite_entry(best, NORMALIZATION, json.dumps(broken).encode())
    capsys.readouterr()
    assert main(["replay", "--run", str(run), "--episodes", "1", "--out", str(tmp_path / "replay2")]) == 2
    err = capsys.readouterr().err
    assert str(best) in err and "observation statistics" in err and "Traceback" not in err
    assert not (tmp_path / "replay2").exists()


def test_train_rl_and_replay_observe_the_named_encoder(tmp_path, demo_episode):
    run = tmp_path / "run"
    assert main(["train-rl", "--out", str(run), "--reward", "tcn", "--encoder", "pixels", "--observe-encoder", "random",
                 "--demo", str(demo_episode), "--steps", "64", "--n-envs", "1", "env.episode_steps=20", "env.num_particles=10",
                 "env.image_size=32", "rl.append_embedding=true", "rl.eval_every=64", "rl.eval_episodes=1",
                 "rl.ppo.n_steps=64", "rl.ppo.batch_size=32", "rl.ppo.n_epochs=1"]) == 0
    assert json.loads((run / "metrics.json").read_text())["observe_encoder"] == "random"
    from stable_baselines3 import PPO

    d = baseline_encoder("random", ModelConfig(), 0, "cpu")(np.zeros((1, 32, 32, 3), np.uint8)).shape[1]
    assert PPO.load(run / "checkpoints" / "last.zip", device="cpu").observation_space.shape == (18 + 2 * d,)
    assert main(["replay", "--run", str(run), "--episodes", "1", "--out", str(tmp_path / "replay")]) == 0


def test_ppo_exploration_options_reach_the_model(tmp_path):
    run = tmp_path / "run"
    assert main(["train-rl", "--out", str(run), "--reward", "env", "--steps", "64", "--n-envs", "1", "env.episode_steps=16",
                 "env.num_particles=10", "rl.eval_every=64", "rl.eval_episodes=1", "rl.ppo.n_steps=64", "rl.ppo.batch_size=32",
                 "rl.ppo.n_epochs=1", "rl.ppo.use_sde=true", "rl.ppo.sde_sample_freq=8", "rl.ppo.log_std_init=-1.5"]) == 0
    from stable_baselines3 import PPO

    model = PPO.load(run / "checkpoints" / "last.zip", device="cpu")
    assert model.use_sde and model.sde_sample_freq == 8
    assert model.policy.log_std.shape == (128, 3)  # gSDE: one std per (latent feature, action)
    assert abs(float(model.policy.log_std.detach().mean()) + 1.5) < 0.1


def test_sac_trains_resumes_with_its_replay_buffer_and_replays(tmp_path, demo_episode):
    run = tmp_path / "run"
    common = ["--algo", "sac", "--reward", "tcn", "--encoder", "pixels", "--demo", str(demo_episode), "--n-envs", "2",
              "env.episode_steps=16", "env.num_particles=10", "env.image_size=32", "rl.eval_every=64",
              "rl.eval_episodes=1", "rl.sac.learning_starts=32", "rl.sac.batch_size=16", "rl.sac.net_arch=[32,32]"]
    assert main(["train-rl", "--out", str(run), "--steps", "64", *common]) == 0
    assert json.loads((run / "metrics.json").read_text())["algo"] == "sac"
    buffer = run / "checkpoints" / "last.zip"
    pos, full, arrays = read_replay(buffer)
    assert pos == 64 // 2 and not full and len(arrays["observations"]) == pos  # every transition (stored per env, 2 envs)
    first = arrays["observations"][:32].copy()
    assert main(["train-rl", "--out", str(run), "--steps", "96", "--resume", *common]) == 0
    assert json.loads((run / "metrics.json").read_text())["steps"] == 96
    pos, _, arrays = read_replay(buffer)  # the resumed run added every transition to the saved buffer
    assert pos == 96 // 2 and np.array_equal(arrays["observations"][:32], first)
    assert main(["replay", "--run", str(run), "--episodes", "1", "--out", str(tmp_path / "replay")]) == 0


def test_train_rl_errors_name_what_is_missing(tmp_path, capsys):
    assert main(["train-rl", "--out", str(tmp_path / "r"), "--reward", "tcn"]) == 2
    assert "needs --encoder" in capsys.readouterr().err
    assert main(["train-rl", "--out", str(tmp_path / "r"), "--reward", "tcn", "--encoder", "pixels", "--demo", str(tmp_path / "nope")]) == 2
    assert "--demo" in capsys.readouterr().err
    assert main(["train-rl", "--out", str(tmp_path / "r"), "--reward", "env", "--observe-encoder", "random"]) == 2
    assert "--observe-encoder needs" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_the_learned_reward_works_on_a_gymnasium_env_from_outside_the_project(made, tmp_path):
    """Pendulum-v1 (gymnasium's, rendering RGB frames) rewarded by a TCN checkpoint against a demo
    episode of the pendulum: the batched rewards equal each env's reward computed alone, across the
    auto-reset, and PPO trains on it."""
    import gymnasium as gym
    from stable_baselines3 import PPO

    from tcn_robot.data.episodes import EpisodeWriter, load_demo
    from tcn_robot.encoders import checkpoint_encoder
    from tcn_robot.reward import TimeIndexed

    steps = 12

    def pendulum():
        return FrameInInfo(gym.make("Pendulum-v1", render_mode="rgb_array", max_episode_steps=steps))

    env = pendulum()  # a demo: the pendulum swung by a fixed torque, written as an episode
    env.reset(seed=0)
    writer = EpisodeWriter(tmp_path, "demo", 1, 30, (500, 500))
    writer.add([env.render()])
    for _ in range(steps):
        writer.add([env.step(np.array([2.0], np.float32))[4]["frame"]])
    writer.commit({"name": "demo", "fps": 30, "image_size": [500, 500]}, None)
    ckpt = made / "tcn/checkpoints/last.pt"
    enc = checkpoint_encoder(str(ckpt), "cpu")
    demo = enc(load_demo(tmp_path / "demo", 0))
    score = TimeIndexed(demo, RCFG, steps)
    venv = LearnedRewardVecEnv(DummyVecEnv([pendulum] * 2), enc, score)
    venv.seed(5)
    venv.reset()
    acts = np.random.default_rng(0).uniform(-2, 2, size=(steps + 3, 2, 1)).astype(np.float32)
    got = np.array([venv.step(a)[1] for a in acts])
    for i in range(2):  # each env alone: step, render, embed the frame, score it against the demo frames near its step
        alone = pendulum()
        alone.reset(seed=5 + i)
        t, want = 0, []
        for a in acts[:, i]:
            _, _, term, trunc, info = alone.step(a)
            t += 1
            w = enc(info["frame"][None])
            j = int(demo_index(t, steps + 1, len(demo)))
            near = range(max(0, j - RCFG.window), min(len(demo), j + RCFG.window + 1))
            want.append(max(float(tcn_reward(w, demo[m]).numpy()[0]) for m in near))
            if term or trunc:
                alone.reset()
                t = 0
        assert np.allclose(got[:, i], want, atol=1e-5)
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(32)
    assert model.num_timesteps == 32


@pytest.mark.parametrize("kind", ["tcn", "goal", "orca", "progress"])
def test_an_episodes_rewards_computed_at_once_equal_the_wrappers(parts, kind):
    """``reward.episode_rewards`` (evaluation's reading of a recorded episode) gives the rewards the
    vec-env wrapper gives step by step."""
    from tcn_robot.reward import episode_rewards

    enc, demo = parts
    acts = actions(1, STEPS, seed=4)
    venv = rewarded(1, enc, demo, kind)
    venv.seed(9)
    venv.reset()
    frames = [venv.venv.envs[0].unwrapped.render()]
    got = []
    for a in acts:
        _, r, _, infos = venv.step(a)
        got.append(r[0])
        frames.append(infos[0]["frame"])
    assert np.allclose(episode_rewards(kind, enc(np.stack(frames)), demo, RCFG), got, atol=1e-5)


def test_the_reward_of_a_policy_rescores_the_frames_its_reward_saw(made, capsys, monkeypatch):
    """benchmarks/reward_of_policy.py: the frames it films of a policy's episode, scored offline, give the learned
    return the reward gave that episode online, and another embedding named by ``--checkpoint`` (here the run's own
    checkpoint again) re-scores the policy's and the script's episodes as the run's reward does."""
    import importlib.util
    import sys
    from pathlib import Path

    import torch

    from tcn_robot.reward import episode_rewards
    from tcn_robot.rl import EVAL_SEED, RLRun

    spec = importlib.util.spec_from_file_location("reward_of_policy", Path(__file__).resolve().parents[1] / "benchmarks/reward_of_policy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = RLRun.open(made / "rl")
    run.load_reward(torch.device("cpu"))
    venv = run.vec_env(1, subprocess=False)
    env = venv.unwrapped.envs[0].unwrapped
    frames, info, online = module.rollout(venv, run.load_policy(venv), env, EVAL_SEED)
    venv.close()
    size = env.cfg.image_size
    assert frames.shape == (env.cfg.episode_steps + 1, size, size, 3) and info["behaviour_performed"] in ("bowl", "none")
    offline = episode_rewards(run.cfg.rl.reward, run.encoder(frames), run.demo, run.cfg.reward).sum()
    assert offline == pytest.approx(online, rel=1e-4, abs=1e-5)
    again = f"again={made / 'tcn/checkpoints/last.pt'}"
    monkeypatch.setattr(sys, "argv", ["reward_of_policy", "--run", str(made / "rl"), "--episodes", "2", "--checkpoint", again])
    module.main()
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split("|") for line in lines if line.startswith((f"| {EVAL_SEED} |", f"| {EVAL_SEED + 1} |"))]
    assert len(rows) == 2 and all(r[5].strip() == r[6].strip() for r in rows)
    assert float(rows[0][5].split("/")[0]) == pytest.approx(offline, abs=1e-3)
    agent = next(line for line in lines if line.startswith("| the run's | the agent's |")).split("|")[3:5]
    # --every-camera: each camera's frames scored apart; the agent's camera's row is the run without it
    monkeypatch.setattr(sys, "argv", ["reward_of_policy", "--run", str(made / "rl"), "--episodes", "2", "--every-camera"])
    module.main()
    lines = capsys.readouterr().out.splitlines()
    views = [line.split("|") for line in lines if line.startswith("| the run's | view ")]
    assert len(views) == len(run.cfg.env.cameras) and any(line.startswith("| the run's | mean of all |") for line in lines)
    assert views[run.cfg.env.agent_view][3:5] == agent
