"""Policies on disk, read without unpickling anything.

stable-baselines3 saves a model as a zip whose ``data`` entry is JSON with some values pickled
(cloudpickle), and its ``VecNormalize`` and replay buffer as pickles: loading any of them can run
code planted in the file. Here a policy is saved as SB3's zip (its weights are read by
``torch.load(weights_only=True)``) and read with every pickled entry replaced by an object rebuilt
from the run's config and environment (``custom_objects``); a zip with any other pickled entry is
refused. The normalization statistics (return, observations, ``vecnormalize.json``) and the filled
part of SAC's replay buffer (``replay/*.npy``, arrays only, and ``replay.json``) travel inside the
same zip, which is written to a temporary name and renamed: everything ``--resume`` needs becomes
visible at once, so a kill or a full disk at any instant leaves the previous checkpoint whole.
"""
from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from .. import UserError
from ..io import AtomicFile

NORMALIZATION = "vecnormalize.json"  # entries of the policy zip beside SB3's own
REPLAY = "replay.json"  # the replay buffer's position; its arrays are the entries replay/{name}.npy
BUFFERS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")

# the pickled entries SB3 writes for PPO and SAC, and what stands in for each on loading (None: SB3
# rebuilds it when training starts or from the plain entries, e.g. the schedules from learning_rate)
REBUILT = ("policy_class", "observation_space", "action_space", "lr_schedule", "clip_range", "ep_info_buffer",
           "ep_success_buffer", "_last_obs", "_last_episode_starts", "_last_original_obs", "rollout_buffer_class",
           "replay_buffer_class", "train_freq")


def _pickled_entries(path: Path) -> set[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise UserError(f"{path}: not a stable-baselines3 policy ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a stable-baselines3 policy")
    return {k for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v}


def load_policy(path: str | Path, algo: type[BaseAlgorithm], venv: VecEnv, clip_range: float, train_freq: int) -> BaseAlgorithm:
    """The ``algo`` policy saved at ``path``, attached to ``venv``, on the CPU; its pickled entries are
    rebuilt (``clip_range`` and ``train_freq`` from the run's config), never unpickled."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: policy not found")
    pickled = _pickled_entries(path)
    unknown = sorted(pickled - set(REBUILT))
    if unknown:
        raise UserError(f"{path}: refused: it holds pickled objects {unknown} that tcn-robot does not write (loading them could run code)")
    rebuilt = {"policy_class": algo.policy_aliases["MlpPolicy"], "observation_space": venv.observation_space,
               "action_space": venv.action_space, "clip_range": clip_range, "train_freq": (train_freq, "step")}
    custom = {k: rebuilt.get(k) for k in pickled}
    try:
        weights = torch.load(io.BytesIO(entry(path, "policy.pth")), map_location="cpu", weights_only=True)
        finite = all(torch.isfinite(w).all() for w in weights.values() if isinstance(w, torch.Tensor) and w.is_floating_point())
    except (RuntimeError, ValueError, AttributeError) as e:
        raise UserError(f"{path}: unreadable policy weights ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not finite:
        raise UserError(f"{path}: refused: the policy's weights hold NaN or infinite values")
    try:
        return algo.load(path, env=venv, device="cpu", custom_objects=custom)
    except (RuntimeError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: does not fit this run's policy and observation ({str(e).splitlines()[0]})") from None


def save_policy(model: BaseAlgorithm, path: Path, replay_buffer: bool = False) -> None:
    """``model`` to ``path`` (SB3's zip) with, when its env is a ``VecNormalize``, the running statistics
    of the return and (with ``norm_obs``) of the observations, and with ``replay_buffer`` an
    off-policy model's buffer, as entries of the same zip; the file appears whole or not at all."""
    extra = {}
    venv = model.get_env()
    if isinstance(venv, VecNormalize):
        rms = venv.ret_rms
        stats = {"mean": float(rms.mean), "var": float(rms.var), "count": float(rms.count)}
        if venv.norm_obs:
            obs = venv.obs_rms
            stats["obs"] = {"mean": obs.mean.tolist(), "var": obs.var.tolist(), "count": float(obs.count)}
        extra[NORMALIZATION] = json.dumps(stats).encode()
    buf = model.replay_buffer if replay_buffer and isinstance(model, OffPolicyAlgorithm) else None
    with AtomicFile(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            if buf is not None:
                filled = buf.buffer_size if buf.full else buf.pos
                names = [k for k in BUFFERS if getattr(buf, k, None) is not None]
                for k in names:
                    with archive.open(f"replay/{k}.npy", "w", force_zip64=True) as f:
                        np.lib.format.write_array(f, np.ascontiguousarray(getattr(buf, k)[:filled]), allow_pickle=False)
                extra[REPLAY] = json.dumps({"pos": int(buf.pos), "full": bool(buf.full), "arrays": names}).encode()
            for name, data in extra.items():
                archive.writestr(name, data)


def entry(path: Path, name: str) -> bytes:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.read(name)
    except KeyError:
        raise UserError(f"{path}: holds no {name} (not written by this version of tcn-robot)") from None
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: unreadable ({type(e).__name__})") from None


def restore_normalization(venv: VecNormalize, path: Path) -> None:
    """Set ``venv``'s running statistics of the return and, with ``norm_obs``, of the observations from
    the policy zip ``path``."""
    try:
        s = json.loads(entry(path, NORMALIZATION).decode(), parse_constant=float)
        ret = [float(s["mean"]), float(s["var"]), float(s["count"])]
        mean = var = None
        if venv.norm_obs:
            mean, var = np.asarray(s["obs"]["mean"], np.float64), np.asarray(s["obs"]["var"], np.float64)
            if mean.shape != venv.obs_rms.mean.shape or var.shape != mean.shape:
                raise ValueError(f"observation statistics of shape {mean.shape}, the policy observes {venv.obs_rms.mean.shape}")
            ret += [float(s["obs"]["count"]), *mean.tolist(), *var.tolist()]
        if not all(math.isfinite(x) for x in ret) or ret[1] < 0 or ret[2] < 0 or (var is not None and (var < 0).any()):
            raise ValueError("NaN, infinite or negative values")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as e:
        raise UserError(f"{path}: unreadable normalization statistics ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    venv.ret_rms.mean, venv.ret_rms.var, venv.ret_rms.count = np.float64(s["mean"]), np.float64(s["var"]), float(s["count"])
    if venv.norm_obs:
        venv.obs_rms.mean, venv.obs_rms.var, venv.obs_rms.count = mean, var, float(s["obs"]["count"])


def read_replay(path: Path) -> tuple[int, bool, dict[str, np.ndarray]]:
    """(position, full, the filled rows of every array) of the replay buffer in the policy zip ``path``."""
    state = json.loads(entry(path, REPLAY))
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for k in state["arrays"]:
            if k not in BUFFERS:
                raise ValueError(f"unknown buffer {k!r}")
            with archive.open(f"replay/{k}.npy") as f:
                arrays[k] = np.lib.format.read_array(f, allow_pickle=False)
    return int(state["pos"]), bool(state["full"]), arrays


def restore_replay_buffer(model: OffPolicyAlgorithm, path: Path) -> None:
    """Fill ``model``'s replay buffer from the policy zip ``path`` (arrays only, no pickle)."""
    buf = model.replay_buffer
    try:
        pos, full, arrays = read_replay(path)
        for k, stored in arrays.items():
            target = getattr(buf, k)
            if stored.shape[1:] != target.shape[1:] or len(stored) > len(target) or len(stored) != (len(target) if full else pos):
                raise ValueError(f"{k} has shape {stored.shape}, the buffer {target.shape} at position {pos}")
            target[: len(stored)] = stored
        buf.pos, buf.full = pos, full
    except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: cannot restore the replay buffer ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
