"""``tcn-robot record``: run the scripted demonstrators in the pouring world and write episodes.

Demonstrators: ``human``, ``robot``, ``random`` and ``paired`` (the human-proxy pour and its
robot twin moving the cup along the same path in an identical scene, recorded as one episode
whose extra views show the robot: multi-view TCN then treats embodiment like viewpoint). In a
scene of several pouring tasks each episode's demonstrator performs one behaviour, from the
``behaviours`` mix. Episode ``i`` of a dataset is a pure function of (settings, seed, i): its
demonstrator and behaviour come from low-discrepancy sequences over the mixes (so every prefix of the dataset keeps the proportions
and growing ``--episodes`` keeps the episodes already recorded), its env seed from
``SeedSequence([seed, i])``. Hence re-running a command resumes it, ``--shard i/N`` records the
episodes with index = i mod N, and the union of shards equals one unsharded recording.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from tqdm import tqdm

from .. import UserError, __version__, runs
from ..config import parse_mix, save_config
from ..envs import ATTRIBUTES, PourConfig, PourEnv, run_demonstrator, run_paired
from ..envs.behaviours import behaviours_of, performed
from ..envs.config import spread_cameras
from ..io import FILES_BASE, FILES_PER_PROCESS, describe_os_error, ensure_open_files
from ..processes import leave_interrupts_to_parent, parent_alive
from .episodes import MANIFEST, META, EpisodeWriter, read_manifest, write_manifest

GOLDEN = (math.sqrt(5) - 1) / 2
SILVER = math.sqrt(2) - 1  # the behaviours' sequence: independent of the demonstrators' golden one


@dataclass(frozen=True)
class EpisodePlan:
    index: int
    name: str
    demonstrator: str
    seed: int
    behaviour: str | None = None  # None: the env config's


def _pick(mix: dict[str, float], u: float) -> str:
    names, cum = list(mix), np.cumsum(list(mix.values()))
    return names[min(int(np.searchsorted(cum, u, side="right")), len(names) - 1)]


def plan_episodes(n: int, mix: dict[str, float], seed: int, behaviours: dict[str, float] | None = None) -> list[EpisodePlan]:
    """The first ``n`` episodes of the dataset defined by (mix, seed[, behaviours mix])."""
    offset = np.random.default_rng([seed, 0]).uniform()
    offset_b = np.random.default_rng([seed, 0, 1]).uniform()
    plans = []
    for i in range(n):
        demo = _pick(mix, (offset + i * GOLDEN) % 1.0)
        behaviour = _pick(behaviours, (offset_b + i * SILVER) % 1.0) if behaviours else None
        env_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        plans.append(EpisodePlan(i, f"ep{i:05d}", demo, env_seed, behaviour))
    return plans


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
        assert n >= 1 and 0 <= i < n
    except (ValueError, AssertionError):
        raise UserError(f"--shard {text!r}: expected i/N with 0 <= i < N") from None
    return i, n


def env_config(cfg: PourConfig, views: int, image_size: int) -> PourConfig:
    """``cfg`` with a rig of ``views`` cameras (spread evenly unless the config names that many)."""
    cameras = cfg.cameras if len(cfg.cameras) == views else spread_cameras(views)
    out = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cfg), {"image_size": image_size}))
    out.cameras = cameras
    out.agent_view = min(out.agent_view, views - 1)
    return out


# ----------------------------------------------------------------- one episode
_ENVS: dict[str, PourEnv] = {}


def _env(cfg: PourConfig, embodiment: str) -> PourEnv:
    """One env per embodiment per process, rebuilt only when the config changes."""
    env = _ENVS.get(embodiment)
    if env is None or env.cfg != cfg:
        if env is not None:
            env.close()
        env = _ENVS[embodiment] = PourEnv(cfg, embodiment=embodiment)
    return env


def record_episode(plan: EpisodePlan, cfg: PourConfig, root: Path) -> dict:
    """Play ``plan`` and write it under ``root``; returns a summary of the episode.

    A ``paired`` episode holds 2V views: the V cameras of the human-proxy world, then the same V
    cameras of its robot twin (``meta["view_embodiments"]``); states come from the human world.
    """
    if plan.demonstrator == "paired":
        envs = [_env(cfg, "human"), _env(cfg, "robot")]
        steps = (pair[0] for pair in run_paired(*envs, plan.seed, behaviour=plan.behaviour))
    else:
        envs = [_env(cfg, "human" if plan.demonstrator == "human" else "robot")]
        steps = run_demonstrator(plan.demonstrator, envs[0], plan.seed, behaviour=plan.behaviour)
    env = envs[0]
    views = len(cfg.cameras)
    writer = EpisodeWriter(root, plan.name, views * len(envs), env.metadata["render_fps"], (cfg.image_size, cfg.image_size))
    rows: dict[str, list] = {k: [] for k in ("cup_position", "cup_quat", "tilt", "fraction_in_cup", "fraction_in_bowl", "fraction_in_jar",
                                             "fraction_spilled", "fraction_in_air", "camera", *ATTRIBUTES)}
    actions, rewards = [], []

    def capture() -> None:
        writer.add([frame for e in envs for frame in e.render_views()])
        m = env.measurement
        for k, v in (("cup_position", m.cup_center), ("cup_quat", m.cup_quat), ("tilt", m.tilt)):
            rows[k].append(v)
        for k, v in m.info().items():
            rows[k].append(v)
        rows["camera"].append([_camera_row(e.world.camera_now(v)) for e in envs for v in range(views)])

    try:
        capture()
        for step in steps:
            actions.append(step.action)
            rewards.append(step.reward)
            capture()
        states = {k: np.asarray(v) for k, v in rows.items()}
        states["container_angle"] = states["container_angle"].astype(np.int8)
        states["time"] = np.arange(writer.frames) / env.metadata["render_fps"]
        states["action"] = np.asarray(actions, np.float32)
        states["reward"] = np.asarray(rewards, np.float32)
        final = env.measurement
        meta = {
            "name": plan.name, "index": plan.index, "seed": plan.seed, "fps": env.metadata["render_fps"],
            "image_size": [cfg.image_size, cfg.image_size], "embodiment": env.embodiment,
            "view_embodiments": [e.embodiment for e in envs for _ in range(views)],
            "demonstrator": plan.demonstrator, "cameras": [c.as_dict() for e in envs for c in e.world.cameras],
            "agent_view": cfg.agent_view, "camera_columns": list(CAMERA_COLUMNS), "action_axes": list(cfg.action_axes),
            "behaviour": env.world.behaviour.name, "behaviour_performed": performed(final.fractions, cfg.scene),
            "fraction_in_bowl": final.in_bowl, "fraction_in_jar": final.in_jar,
            "is_success": env.world.behaviour.score(final.fractions) >= cfg.success_fraction,
            "versions": _versions(),
        }
        path = writer.commit(meta, states)
    except BaseException:
        writer.abort()
        raise
    return episode_summary(path)


def episode_summary(path: Path) -> dict:
    """What one committed episode holds, read back from its folder."""
    meta = json.loads((path / META).read_text())
    return {
        "name": path.name, "demonstrator": meta["demonstrator"], "frames": meta["num_frames"], "views": meta["num_views"],
        "fraction_in_bowl": meta["fraction_in_bowl"], "is_success": bool(meta["is_success"]),
        "bytes": sum(f.stat().st_size for f in path.iterdir()),
    }


def _record_many(plans: list[EpisodePlan], cfg: PourConfig, root: Path, errors) -> None:
    """A worker process: record ``plans`` one after the other, while the recording process lives. A
    problem the user can fix (a full disk) goes to the recording process as one line, for it to report."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    leave_interrupts_to_parent()
    try:
        for plan in plans:
            if not parent_alive():
                return
            record_episode(plan, cfg, root)
    except (UserError, OSError, MemoryError) as e:
        errors.put(describe_os_error(e) if isinstance(e, OSError) else str(e) or type(e).__name__)
        sys.exit(2)


def _versions() -> dict:
    from importlib.metadata import version

    return {"tcn_robot": __version__, **{p: version(p) for p in ("pybullet", "numpy", "opencv-python-headless")}}


CAMERA_COLUMNS = ("yaw", "pitch", "distance", "fov", "target_x", "target_y", "target_z")


def _camera_row(cam) -> list[float]:
    return [cam.yaw, cam.pitch, cam.distance, cam.fov, *cam.target]


# ----------------------------------------------------------------- a dataset
@contextlib.contextmanager
def _manifest_lock(root: Path):
    """A short exclusive lock around rewriting the manifest (the shards of one recording share it)."""
    with open(root / f"{runs.LOCK}.manifest", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@runs.owns_outputs
def record_dataset(
    env_cfg: PourConfig, out: Path, episodes: int, views: int, image_size: int, seed: int, mix: str,
    shard: str = "0/1", workers: int = 1, overwrite: bool = False, config=None, behaviours: str = "",
) -> dict:
    """Record (or resume) the dataset into ``out``; returns the summary. ``out`` must be new, empty,
    or a recording made with the same settings (resumed), unless ``overwrite``. ``config`` (the
    command's whole config) is saved into it as ``config.yaml``. ``behaviours`` is the mix of
    behaviours (``record.behaviours``; empty: the env's ``behaviour`` throughout)."""
    if episodes < 1 or views < 1 or image_size < 16 or workers < 1:
        raise UserError("--episodes, --views and --workers must be >= 1 and --image-size >= 16")
    try:
        proportions = parse_mix(mix)
        behaviour_mix = parse_mix(behaviours, "record.behaviours", behaviours_of(env_cfg.scene)) if behaviours else None
    except ValueError as e:
        raise UserError(str(e)) from None
    shard_i, shard_n = parse_shard(shard)
    cfg = env_config(env_cfg, views, image_size)
    settings = {"views": views, "image_size": image_size, "seed": seed, "demonstrators": proportions,
                "env": OmegaConf.to_container(OmegaConf.structured(cfg))}
    if behaviour_mix:  # only then, so that recordings from before behaviours existed still resume
        settings["behaviours"] = behaviour_mix
    settings = json.loads(json.dumps(settings))  # as the manifest will hold them, to compare on resume
    out = Path(out)
    mode = runs.check_output(out, "record", overwrite=overwrite)
    if mode == "resume" and (out / MANIFEST).exists():
        old = read_manifest(out).get("settings", {})
        diff = sorted(k for k in settings if not _same_setting(k, old.get(k), settings[k]))
        if diff:
            raise UserError(f"{out / MANIFEST}: recorded with other settings ({', '.join(diff)} differ); "
                            "use another --out, the same settings to resume, or --overwrite")
    ensure_open_files(FILES_BASE + FILES_PER_PROCESS * workers, f"{workers} recording processes")
    runs.claim_output(out, "record", mode, shard=(shard_i, shard_n))
    if config is not None:
        save_config(config, out)
    with _manifest_lock(out):
        if not (out / MANIFEST).exists():
            write_manifest(out, settings)
    plans = [p for p in plan_episodes(episodes, proportions, seed, behaviour_mix) if p.index % shard_n == shard_i]
    pending = [p for p in plans if not (out / p.name / META).exists()]
    summaries: list[dict] = []
    bar = tqdm(total=len(plans), initial=len(plans) - len(pending), desc="record", unit="episode")
    frames, started = 0, time.perf_counter()

    def done(summary: dict) -> None:
        nonlocal frames
        summaries.append(summary)
        frames += summary["frames"] * summary["views"]
        bar.update(1)
        bar.set_postfix(frames_per_s=f"{frames / (time.perf_counter() - started):.0f}")
        with _manifest_lock(out):
            write_manifest(out, settings)

    try:
        if workers == 1 or len(pending) <= 1:
            for plan in pending:
                done(record_episode(plan, cfg, out))
        else:
            _run_workers(pending, cfg, out, workers, done)
    finally:
        bar.close()
    with _manifest_lock(out):
        manifest = write_manifest(out, settings)
    return summarize(out, manifest, summaries, time.perf_counter() - started)


def _same_setting(key: str, old, new) -> bool:
    """Whether a recording's setting ``old`` equals ``new``; world fields added since it was made
    count as their defaults (what it was recorded with)."""
    if key == "env" and isinstance(old, dict):
        defaults = json.loads(json.dumps(OmegaConf.to_container(OmegaConf.structured(PourConfig))))
        old = {**{k: v for k, v in defaults.items() if k not in old}, **old}
    return old == new


def _run_workers(pending: list[EpisodePlan], cfg: PourConfig, out: Path, workers: int, done) -> None:
    """Record ``pending`` in ``workers`` spawned processes (episode i goes to worker i mod W);
    report each episode as its folder appears. A worker that dies stops the run with a UserError,
    after the others finish; complete episodes stay and a re-run resumes."""
    ctx = get_context("spawn")
    errors = ctx.SimpleQueue()
    procs = [ctx.Process(target=_record_many, args=(pending[k::workers], cfg, out, errors), daemon=True)
             for k in range(min(workers, len(pending)))]
    for p in procs:
        p.start()
    left = list(pending)
    try:
        while left:
            for plan in [p for p in left if (out / p.name / META).exists()]:
                done(episode_summary(out / plan.name))
                left.remove(plan)
            if left and not any(p.is_alive() for p in procs):
                break
            time.sleep(0.1)
    except BaseException:
        for p in procs:
            p.terminate()
        raise
    for p in procs:
        p.join()
    dead = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if dead or left:
        why = errors.get() if not errors.empty() else f"a recording worker died (exit code {dead[0] if dead else '?'})"
        raise UserError(f"{why}; {len(pending) - len(left)} episodes finished in this run are kept in {out}: "
                        "run the same command again to resume")


def summarize(out: Path, manifest: dict, new: list[dict], seconds: float) -> dict:
    """Counts over the whole dataset plus what this run recorded."""
    entries = manifest["episodes"]
    by_demo = Counter(e.get("demonstrator", "?") for e in entries)
    by_behaviour = Counter(e["behaviour"] for e in entries if "behaviour" in e)
    success = {d: float(np.mean([bool(e.get("is_success")) for e in entries if e.get("demonstrator") == d])) for d in by_demo}
    frames = sum(s["frames"] * s["views"] for s in new)
    return {
        "dataset": str(out),
        "episodes": len(entries),
        "recorded_now": len(new),
        "frames_recorded_now": frames,
        "frames_per_second": frames / seconds if new and seconds > 0 else 0.0,
        "bytes_written": sum(s["bytes"] for s in new),
        "demonstrators": dict(by_demo),
        "success_rate": success,
        **({"behaviours": dict(by_behaviour)} if len(by_behaviour) > 1 else {}),
    }
