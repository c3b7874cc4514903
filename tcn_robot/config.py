"""Run configuration: one schema of dataclasses, YAML files, ``key=value`` overrides (OmegaConf).

Every command reads the same schema; each uses its own sections. Unknown keys and wrong types are
errors that name the key and the file. Every run saves its resolved config as ``config.yaml``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from importlib import resources
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

import math

from . import HELDOUT_SEED, UserError
from .envs.behaviours import behaviours_of
from .envs.config import DEMONSTRATORS, PourConfig, _check, check_ranges
from .io import atomic_write_text
from .methods import METHODS

DEFAULT_CONFIG = "quickstart.yaml"


@dataclass
class ModelConfig:
    """Architecture of an embedding network (saved in every checkpoint; ``models.EmbeddingNet``)."""

    encoder: str = "small"  # small | resnet18
    image_size: int = 64  # frames are resized to this before the encoder
    width: int = 32  # channels of the small CNN's first layer
    head_channels: int = 64  # channels of the head's two convolutions (keypoints = this many)
    presence: bool = False  # also give the head's FC each channel's spatial maximum: what is in the picture, beside
                            # where (the soft-argmax keeps only where); off is the TCN paper's head
    hidden: int = 256  # width of the fully connected layer
    embedding_dim: int = 32
    normalize: bool = True  # L2-normalize the embedding
    pretrained: str = ""  # local path of torchvision-format ResNet-18 weights, loaded at construction
    context: int = 1  # frames one embedding reads, ending at its frame (a clip encoder when > 1: CVRL's)
    context_stride: int = 1  # steps between those frames


@dataclass
class AugmentConfig:
    """``augment.*``: batched training augmentation on the device (``data/augment.py``)."""

    enabled: bool = True
    crop_scale: tuple[float, float] = (0.7, 1.0)
    crop_ratio: tuple[float, float] = (0.85, 1.15)
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.4
    hue: float = 0.2  # strong: anchor and positive get different hues, against per-episode colour randomization
    jitter_prob: float = 0.8
    # viewpoint changes no camera of the rig made: a random perspective warp of this distortion (kornia's scale, 0-1)
    # and a rotation of up to this many degrees, each applied to half the images; 0 leaves them out
    perspective: float = 0.0
    rotate_deg: float = 0.0
    # the chance that an image is mirrored left to right, so that the embedding cannot tell a scene from its mirror
    # image (in the family scene it lost behaviour retrieval: docs/results.md, "The demo decides"); 0 leaves it out
    hflip: float = 0.0


@dataclass
class TrainConfig:
    """``train.*``: the training engine's settings (``train/engine.py``)."""

    steps: int = 1500
    lr: float = 3e-4
    schedule: str = "constant"  # constant | cosine: the learning rate decays to 0 at train.steps (Loshchilov & Hutter 2017)
    warmup_steps: int = 0  # linear warm-up from 0 to train.lr over this many steps
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | mps
    amp: bool = True  # bf16 autocast on CUDA and on CPUs with native bf16 (device.bf16_autocast); ignored elsewhere
    compile: bool = False
    method: str = "tcn"  # the objective: a name of methods.METHODS (tcn-robot pretrain --method)
    val_episodes: int = 2  # the last episodes of the dataset, held out for validation
    select_best: str = "alignment_error"  # the validation figure that picks best.pt: alignment_error | pretext_error
    checkpoint_every: int = 250  # steps between checkpoints (and on Ctrl-C / SIGTERM)
    checkpoint_minutes: float = 10.0  # also checkpoint when this long has passed since the last one (0: off)
    val_every: int = 250
    log_every: int = 10
    seed: int = 0


@dataclass
class RewardConfig:
    """``reward.*``: the constants of the TCN reward (``reward.py``; which reward a policy trains on is ``rl.reward``)."""

    a: float = 0.5
    b: float = 0.5
    g: float = 1e-3
    window: int = 10  # tolerance of the time alignment, in demo frames either side (0: the paper's exact index)
    temperature: float = 1.0  # orca: match probability exp(-cosine distance / temperature) (ORCA's default 1)
    quantile: float = 0.1  # progress: a demo frame counts by how much its match beats this quantile of the frame's distances


@dataclass
class PipelineSection:
    """``tcn-robot pipeline``: the end-to-end chain."""

    seed: int = 0  # seed of the human-proxy demonstration video
    video_size: int = 128  # image size of the demonstration video
    replay_episodes: int = 2


@dataclass
class RecordSection:
    """``tcn-robot record``: which episodes a dataset holds."""

    episodes: int = 24
    views: int = 3
    image_size: int = 64
    seed: int = 0
    demonstrators: str = "paired=0.5,human=0.2,robot=0.15,random=0.15"  # proportions of each demonstrator
    # proportions of each behaviour the demonstrators perform (env.scene's, envs/behaviours.py), e.g.
    # bowl=1,jar=1,half=1; empty: env.behaviour in every episode
    behaviours: str = ""
    workers: int = 1
    # the held-out set (`record --heldout`, and the pipeline's): evaluation data and the demos to imitate
    heldout_episodes: int = 6
    heldout_seed: int = HELDOUT_SEED
    heldout_demonstrators: str = ""  # empty: the training mix


@dataclass
class EvaluateSection:
    """``evaluate.*``: held-out evaluation settings."""

    demo: str = ""  # the human-proxy demo episode for reward quality; default: the data's first successful one
    agent_view: int = 0  # the view a robot would see
    cross_demo_view: int = 1  # the demo's view in the cross-view reward reading
    max_pairs: int = 30  # pairs of successful episodes for Kendall's tau and cycle consistency
    probe_steps: int = 300  # linear probe optimization steps


@dataclass
class PPOParams:
    """stable-baselines3 PPO hyperparameters (``n_steps`` is per environment)."""

    n_steps: int = 1024
    batch_size: int = 256
    n_epochs: int = 10
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.0
    clip_range: float = 0.2
    log_std_init: float = 0.0  # initial log std of the Gaussian policy (0: std 1 over actions in [-1, 1])
    # generalized state-dependent exploration (Raffin et al. 2022): noise a function of the policy's
    # features, redrawn every sde_sample_freq steps (-1: once per rollout); pair with log_std_init=-2
    use_sde: bool = False
    sde_sample_freq: int = -1
    net_arch: tuple[int, ...] = (128, 128)


@dataclass
class SACParams:
    """stable-baselines3 SAC hyperparameters."""

    learning_rate: float = 3e-4
    buffer_size: int = 300_000
    batch_size: int = 256
    learning_starts: int = 5_000
    gamma: float = 0.99
    train_freq: int = 1
    gradient_steps: int = 1
    net_arch: tuple[int, ...] = (256, 256)


@dataclass
class RLSection:
    """``tcn-robot train-rl``: the policy, its reward, budget and evaluation."""

    algo: str = "ppo"  # ppo | sac
    reward: str = "env"  # env (the ground truth) | tcn (the paper's) | goal (XIRL) | orca (ORCA) | progress (ordered progress)
    encoder: str = ""  # tcn/goal: a checkpoint path, or the baselines random | pixels
    demo: str = ""  # tcn/goal: the demonstration episode folder
    demo_view: int = 0  # the demo's camera (the agent sees env.agent_view)
    append_embedding: bool = False  # tcn/goal: add the current and the demo's embedding to the observation (env: ignored)
    observe_encoder: str = ""  # the encoder of those embeddings (checkpoint, random or pixels); empty: rl.encoder
    # scale the training reward by the running std of the discounted return (SB3 VecNormalize, no
    # observation normalization); learned rewards of about -1 per step otherwise give value targets
    # near -60 that the clipped value gradient took ~26k steps to reach, while the policy drifted
    normalize_reward: bool = True
    # standardize every observation by the running mean and std of the training observations (SB3
    # VecNormalize; frozen for evaluation and replay, saved beside the policy): the state's positions
    # move by centimetres, the embeddings by tenths
    normalize_obs: bool = False
    steps: int = 200_000
    n_envs: int = 2
    seed: int = 0
    eval_every: int = 20_480
    eval_episodes: int = 20
    ppo: PPOParams = field(default_factory=PPOParams)
    sac: SACParams = field(default_factory=SACParams)


# The run config: the sections every command shares, then one section per training method (methods.py).
Config = make_dataclass("Config", [
    ("env", PourConfig, field(default_factory=PourConfig)),
    ("pipeline", PipelineSection, field(default_factory=PipelineSection)),
    ("record", RecordSection, field(default_factory=RecordSection)),
    ("model", ModelConfig, field(default_factory=ModelConfig)),
    ("augment", AugmentConfig, field(default_factory=AugmentConfig)),
    ("train", TrainConfig, field(default_factory=TrainConfig)),
    *[(spec.section, spec.config, field(default_factory=spec.config)) for spec in METHODS.values()],
    ("evaluate", EvaluateSection, field(default_factory=EvaluateSection)),
    ("reward", RewardConfig, field(default_factory=RewardConfig)),
    ("rl", RLSection, field(default_factory=RLSection)),
])
Config.__doc__ = "Every setting of every command; each command reads its own sections."


def packaged_config_path(name: str = DEFAULT_CONFIG) -> Path:
    """Path of a YAML file shipped in ``tcn_robot.configs``."""
    return Path(str(resources.files("tcn_robot.configs") / name))


def _config_file(path: str | Path | None) -> Path:
    """``path``; the packaged default when None; a packaged config when ``path`` is one's name
    (``quickstart``, ``table1``, ``unpaired``, ``family``, ...) and no such file exists."""
    if path is None:
        return packaged_config_path()
    packaged = packaged_config_path(f"{path}.yaml")
    return packaged if not Path(path).exists() and "/" not in str(path) and packaged.is_file() else Path(path)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                base: str | Path | None = None) -> Config:
    """The schema, then ``base`` (a run's saved config, when resuming it), then the YAML file ``path``
    (or the name of a packaged one; default: the packaged quickstart, unless ``base`` is given), then
    ``key=value`` ``overrides``;
    every value is checked against its type and range.

    Raises ``UserError`` naming the file or override and the problem.
    """
    files = [Path(base)] if base is not None else []
    if path is not None or base is None:
        files.append(_config_file(path))
    merged = OmegaConf.structured(Config)
    for f, node in (layer for f in files for layer in _layers(f)):
        try:
            merged = OmegaConf.merge(merged, _upgrade(node))
        except OmegaConfBaseException as e:
            raise UserError(f"{f}: {_explain(e)}") from None
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r} is not of the form key=value")
    try:  # all at once (fast); one by one only to name the override that fails
        merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
    except (OmegaConfBaseException, TypeError, ValueError):
        for item in overrides:
            try:
                merged = OmegaConf.merge(merged, OmegaConf.from_dotlist([item]))
            except OmegaConfBaseException as e:
                raise UserError(f"override {item!r}: {_explain(e)}") from None
            except (TypeError, ValueError) as e:  # e.g. a list index given to a list of structured values
                raise UserError(f"override {item!r}: {e}") from None
    cfg: Config = OmegaConf.to_object(merged)
    try:
        validate(cfg)
    except ValueError as e:
        key = str(e).split()[0].rstrip(":")
        given = [o for o in overrides if o.split("=", 1)[0].strip() == key]
        where = f"override {given[-1]!r}" if given else str(files[-1])
        raise UserError(f"{where}: {e}") from None
    return cfg


SEED = (0, 2**31 - 1)
COUNT = (1, 10**9)
CHOICES = {
    "model.encoder": ("small", "resnet18"), "train.device": ("auto", "cpu", "cuda", "mps"), "train.method": tuple(METHODS),
    "train.select_best": ("alignment_error", "pretext_error"), "train.schedule": ("constant", "cosine"), "rl.algo": ("ppo", "sac"), "rl.reward": ("env", "tcn", "goal", "orca", "progress"),
    **{f"{spec.section}.{key}": allowed for spec in METHODS.values() for key, allowed in spec.choices.items()},
}
RANGES = {
    "pipeline": {"seed": SEED, "video_size": (8, 1024), "replay_episodes": (1, 10**4)},
    "record": {"episodes": (1, 10**7), "views": (1, 16), "image_size": (16, 1024), "seed": SEED, "workers": (1, 256),
               "heldout_episodes": (1, 10**6), "heldout_seed": SEED},
    "model": {"image_size": (8, 1024), "width": (1, 1024), "head_channels": (1, 4096), "hidden": (1, 65536), "embedding_dim": (1, 4096),
              "context": (1, 256), "context_stride": (1, 256)},
    "augment": {"crop_scale": (0.01, 1.0), "crop_ratio": (0.1, 10.0), "brightness": (0.0, 1.0), "contrast": (0.0, 1.0),
                "saturation": (0.0, 1.0), "hue": (0.0, 0.5), "jitter_prob": (0.0, 1.0), "perspective": (0.0, 1.0),
                "rotate_deg": (0.0, 180.0), "hflip": (0.0, 1.0)},
    "train": {"steps": COUNT, "lr": (1e-12, 1.0), "weight_decay": (0.0, 10.0), "grad_clip": (1e-6, 1e6), "checkpoint_every": COUNT,
              "warmup_steps": (0, 10**9), "checkpoint_minutes": (0.0, 1e6), "val_every": COUNT, "log_every": COUNT, "seed": SEED, "val_episodes": (0, 10**6)},
    "evaluate": {"agent_view": (0, 63), "cross_demo_view": (0, 63), "max_pairs": (1, 10**6), "probe_steps": (1, 10**6)},
    "reward": {"a": (-1e6, 1e6), "b": (-1e6, 1e6), "g": (0.0, 1e6), "window": (0, 10**6), "temperature": (1e-4, 1e4), "quantile": (0.0, 1.0)},
    "rl": {"demo_view": (0, 63), "steps": COUNT, "n_envs": (1, 256), "seed": SEED, "eval_every": COUNT, "eval_episodes": (1, 10**6)},
    "rl.ppo": {"n_steps": (2, 10**7), "batch_size": (2, 10**7), "n_epochs": (1, 10**4), "learning_rate": (1e-12, 1.0),
               "gamma": (0.0, 1.0), "gae_lambda": (0.0, 1.0), "ent_coef": (0.0, 1e3), "clip_range": (1e-6, 10.0),
               "log_std_init": (-20.0, 5.0), "sde_sample_freq": (-1, 10**7), "net_arch": (1, 10**5)},
    "rl.sac": {"learning_rate": (1e-12, 1.0), "buffer_size": COUNT, "batch_size": (1, 10**7), "learning_starts": (0, 10**9),
               "gamma": (0.0, 1.0), "train_freq": (1, 10**6), "gradient_steps": (-1, 10**6), "net_arch": (1, 10**5)},
}


def validate(cfg: Config) -> None:
    """Raise ValueError naming the first key whose value is outside its choices or range."""
    try:
        _check(cfg.env)
    except ValueError as e:
        raise ValueError(f"env.{e}") from None
    tables = [*RANGES.items(), *((spec.section, spec.ranges) for spec in METHODS.values())]
    for section, ranges in tables:
        for key, bounds in ranges.items():
            *path, name = f"{section}.{key}".split(".")
            obj = cfg
            for part in path:
                obj = getattr(obj, part)
            check_ranges(obj, {name: bounds}, f"{'.'.join(path)}.")
    for key, allowed in CHOICES.items():
        *path, name = key.split(".")
        obj = cfg
        for part in path:
            obj = getattr(obj, part)
        if getattr(obj, name) not in allowed:
            raise ValueError(f"{key} must be one of {', '.join(allowed)}, got {getattr(obj, name)!r}")
    for name in ("crop_scale", "crop_ratio"):
        low, high = getattr(cfg.augment, name)
        if not low <= high:
            raise ValueError(f"augment.{name} must be (low, high) with low <= high, got {[low, high]}")
    if cfg.tcn.mode == "singleview" and not cfg.tcn.pos_radius < cfg.tcn.neg_radius:
        raise ValueError(f"tcn.pos_radius ({cfg.tcn.pos_radius}) must be below tcn.neg_radius ({cfg.tcn.neg_radius})")
    if not cfg.rl.ppo.net_arch or not cfg.rl.sac.net_arch:
        raise ValueError("rl.ppo.net_arch and rl.sac.net_arch need at least one layer")
    parse_mix(cfg.record.demonstrators)
    if cfg.record.behaviours:
        parse_mix(cfg.record.behaviours, "record.behaviours", behaviours_of(cfg.env.scene))
    if cfg.record.heldout_demonstrators:
        parse_mix(cfg.record.heldout_demonstrators, "record.heldout_demonstrators")


def check_model(model: ModelConfig) -> None:
    """Raise ValueError naming the first ``model.*`` key with a wrong type or outside its range (a
    checkpoint's architecture is checked before any network is built from it)."""
    for key, (low, high) in RANGES["model"].items():
        value = getattr(model, key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"model.{key} must be an integer between {low} and {high}, got {value!r}")
    if model.encoder not in CHOICES["model.encoder"] or not isinstance(model.normalize, bool):
        raise ValueError(f"model.encoder {model.encoder!r} or model.normalize {model.normalize!r} is impossible")


def parse_mix(text: str, key: str = "record.demonstrators", names: tuple[str, ...] = DEMONSTRATORS) -> dict[str, float]:
    """``"human=0.5,robot=0.25,random=0.25"`` -> normalized proportions of ``names`` (the
    demonstrators, or the behaviours of a scene); raises ValueError naming ``key`` and the problem."""
    mix = {}
    what = "demonstrator" if names == DEMONSTRATORS else "behaviour"
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in names:
            raise ValueError(f"{key}: unknown {what} {name!r} (choose from {', '.join(names)})")
        try:
            mix[name] = float(value) if value else 1.0
        except ValueError:
            raise ValueError(f"{key}: {part!r} is not NAME=PROPORTION") from None
        if not (math.isfinite(mix[name]) and mix[name] >= 0):
            raise ValueError(f"{key}: the proportion of {name} must be a number >= 0, got {value}")
    if sum(mix.values()) <= 0:
        raise ValueError(f"{key}: {text!r} gives no {what} a positive proportion")
    total = sum(mix.values())
    return {k: v / total for k, v in mix.items() if v > 0}


# What a resumed run may change; every other key is the run's own (its model, data, objective, method).
_TRAINING = ("train.steps", "train.checkpoint_every", "train.checkpoint_minutes", "train.val_every", "train.log_every", "train.device",
             "train.amp")  # how the arithmetic runs, as the device: a resumed run may move to another machine
RESUME_MAY_CHANGE = {
    "train-tcn": _TRAINING, "pretrain": _TRAINING,
    "train-rl": ("rl.steps", "rl.eval_every", "rl.eval_episodes", "train.device"),
    "pipeline": (*_TRAINING, "rl.steps", "rl.eval_every", "rl.eval_episodes", "pipeline.replay_episodes"),
}


def flatten(cfg: Config) -> dict:
    """Every key of ``cfg`` as ``{"section.key": value}`` (lists and tuples as lists)."""
    def walk(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from walk(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v
    return dict(walk(OmegaConf.to_container(OmegaConf.structured(cfg)), ""))


def resume_changes(run: str | Path, cfg: Config, kind: str) -> dict[str, list]:
    """The keys whose values ``cfg`` changes from the config saved in the run folder ``run``, as
    ``{key: [saved, new]}``; raises ``UserError`` naming the keys that may not change mid-run."""
    saved = flatten(load_config(None, (), base=Path(run) / "config.yaml"))
    new = flatten(cfg)
    changed = {k: [saved.get(k), v] for k, v in new.items() if saved.get(k) != v}
    fixed = [k for k in changed if k not in RESUME_MAY_CHANGE[kind]]
    if fixed:
        listed = ", ".join(f"{k} ({changed[k][0]} -> {changed[k][1]})" for k in fixed[:4]) + (" ..." if len(fixed) > 4 else "")
        raise UserError(f"{run}: resuming cannot change {listed}: the run was made with its saved config.yaml; "
                        f"only {', '.join(RESUME_MAY_CHANGE[kind])} may change. Start a new run with another --out")
    return changed


# keys that earlier versions wrote into run folders, and where they live now (None: gone, nothing computes with it)
MOVED = {"pipeline.heldout_episodes": "record.heldout_episodes", "pipeline.heldout_seed": "record.heldout_seed",
         "env.frame_in_info": None}


def _layers(f: Path, within: tuple[Path, ...] = ()) -> list[tuple[Path, object]]:
    """The YAML file ``f`` as (file, node) layers to merge in order: the config its top-level ``include:``
    names (a packaged config's name, or a path relative to ``f``), recursively, then ``f`` itself."""
    if not f.is_file():
        raise UserError(f"{f}: config file not found" + (f" (included by {within[-1]})" if within else ""))
    try:
        node = OmegaConf.load(f)
    except Exception as e:  # YAML syntax errors come from the yaml parser
        raise UserError(f"{f}: not valid YAML ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if not (OmegaConf.is_dict(node) and "include" in node):
        return [(f, node)]
    name = node.pop("include")
    if not isinstance(name, str) or not name:
        raise UserError(f"{f}: include must name a config (a packaged one, or a YAML file), got {name!r}")
    packaged = packaged_config_path(f"{name}.yaml")
    base = packaged if "/" not in name and not name.endswith(".yaml") and packaged.is_file() else f.parent / name
    if base.resolve() in {p.resolve() for p in (*within, f)}:
        raise UserError(f"{f}: includes {base}, which includes it again")
    return [*_layers(base, (*within, f)), (f, node)]


def _upgrade(node):
    """A config file as this version reads it: the keys of ``MOVED`` put where they live now."""
    if not OmegaConf.is_dict(node):
        return node
    for old, new in MOVED.items():
        section, key = old.split(".")
        part = node.get(section)
        if OmegaConf.is_dict(part) and key in part:
            value = part.pop(key)
            if new is not None:
                OmegaConf.update(node, new, value, force_add=True)
    return node


def _explain(e: OmegaConfBaseException) -> str:
    key = getattr(e, "full_key", None)
    first = str(e).splitlines()[0]
    if type(e).__name__ == "ConfigKeyError" and key:
        return f"unknown key '{key}'"
    return f"key '{key}': {first}" if key else first


def to_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def save_config(cfg: Config, run_dir: str | Path) -> Path:
    """Write the resolved config to ``run_dir/config.yaml`` (atomically) and return the path."""
    path = Path(run_dir) / "config.yaml"
    atomic_write_text(path, to_yaml(cfg))
    return path
