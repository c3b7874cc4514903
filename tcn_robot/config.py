"""Run configuration: one schema of dataclasses, YAML files, ``key=value`` overrides (OmegaConf).

Every command reads the same schema; each uses its own sections. Unknown keys and wrong types are
errors that name the key and the file. Every run saves its resolved config as ``config.yaml``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from . import UserError
from .envs.config import PourConfig, _check
from .io import atomic_write_text

DEFAULT_CONFIG = "quickstart.yaml"


@dataclass
class ModelConfig:
    """Architecture of an embedding network (saved in every checkpoint; ``models.EmbeddingNet``)."""

    encoder: str = "small"  # small | resnet18
    image_size: int = 64  # frames are resized to this before the encoder
    width: int = 32  # channels of the small CNN's first layer
    head_channels: int = 64  # channels of the head's two convolutions (keypoints = this many)
    hidden: int = 256  # width of the fully connected layer
    embedding_dim: int = 32
    normalize: bool = True  # L2-normalize the embedding
    pretrained: str = ""  # local path of torchvision-format ResNet-18 weights, loaded at construction


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


@dataclass
class TrainConfig:
    """``train.*``: the training engine's settings (``train/engine.py``)."""

    steps: int = 1500
    lr: float = 3e-4
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | mps
    amp: bool = True  # bf16 autocast on CUDA; ignored elsewhere
    compile: bool = False
    checkpoint_every: int = 250
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


@dataclass
class PipelineSection:
    """``tcn-robot pipeline``: the end-to-end chain."""

    seed: int = 0  # seed of the human-proxy demonstration video
    video_size: int = 128  # image size of the demonstration video
    heldout_episodes: int = 6  # recorded with heldout_seed: evaluation data and the demo to imitate
    heldout_seed: int = 1000
    replay_episodes: int = 2


@dataclass
class RecordSection:
    """``tcn-robot record``: which episodes a dataset holds."""

    episodes: int = 24
    views: int = 3
    image_size: int = 64
    seed: int = 0
    demonstrators: str = "paired=0.5,human=0.2,robot=0.15,random=0.15"  # proportions of each demonstrator
    workers: int = 1


@dataclass
class TCNSection:
    """``tcn.*``: the TCN objective and its batches."""

    mode: str = "multiview"  # multiview | singleview
    loss: str = "triplet"  # triplet | npairs | infonce | lifted
    # sequence: every sequence of a batch is its own contrast, negatives are other instants of the same
    # episode (the paper's one-sequence batches: the embedding cannot lean on what tells episodes apart,
    # such as colours); batch: every other row of the batch, gathered over all ranks under DDP
    negatives: str = "sequence"
    sequences_per_batch: int = 4
    frames_per_sequence: int = 16
    margin: float = 0.2  # triplet margin (squared distances of L2-normalized embeddings)
    mining: str = "semihard"  # semihard | hard | all
    reg_lambda: float = 0.002  # npairs
    temperature: float = 0.1  # infonce
    symmetric: bool = True  # infonce: both directions
    exclusion_radius: int = -1  # infonce: frames of the anchor's episode this close are not negatives (-1: off)
    lifted_margin: float = 1.0
    pos_radius: int = 6  # singleview
    neg_radius: int = 12  # singleview
    val_episodes: int = 2  # the last episodes of the dataset, held out for validation


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
    reward: str = "env"  # env (the ground-truth dense reward) | tcn (the paper's) | goal (XIRL)
    encoder: str = ""  # tcn/goal: a checkpoint path, or the baselines random | pixels
    demo: str = ""  # tcn/goal: the demonstration episode folder
    demo_view: int = 0  # the demo's camera (the agent sees env.agent_view)
    append_embedding: bool = False  # tcn/goal: add the current and the demo's embedding to the observation (env: ignored)
    observe_encoder: str = ""  # the encoder of those embeddings (checkpoint, random or pixels); empty: rl.encoder
    # scale the training reward by the running std of the discounted return (SB3 VecNormalize, no
    # observation normalization); learned rewards of about -1 per step otherwise give value targets
    # near -60 that the clipped value gradient took ~26k steps to reach, while the policy drifted
    normalize_reward: bool = True
    steps: int = 200_000
    n_envs: int = 2
    seed: int = 0
    eval_every: int = 20_480
    eval_episodes: int = 20
    ppo: PPOParams = field(default_factory=PPOParams)
    sac: SACParams = field(default_factory=SACParams)


@dataclass
class Config:
    env: PourConfig = field(default_factory=PourConfig)
    pipeline: PipelineSection = field(default_factory=PipelineSection)
    record: RecordSection = field(default_factory=RecordSection)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tcn: TCNSection = field(default_factory=TCNSection)
    evaluate: EvaluateSection = field(default_factory=EvaluateSection)
    reward: RewardConfig = field(default_factory=RewardConfig)
    rl: RLSection = field(default_factory=RLSection)


def packaged_config_path(name: str = DEFAULT_CONFIG) -> Path:
    """Path of a YAML file shipped in ``tcn_robot.configs``."""
    return Path(str(resources.files("tcn_robot.configs") / name))


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The packaged default (or ``path``) merged onto the schema, then ``key=value`` ``overrides``.

    Raises ``UserError`` naming the file or override and the problem.
    """
    path = Path(path) if path is not None else packaged_config_path()
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    merged = OmegaConf.structured(Config)
    try:
        merged = OmegaConf.merge(merged, OmegaConf.load(path))
    except OmegaConfBaseException as e:
        raise UserError(f"{path}: {_explain(e)}") from None
    except Exception as e:  # YAML syntax errors come from the yaml parser
        raise UserError(f"{path}: not valid YAML ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r} is not of the form key=value")
        try:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist([item]))
        except OmegaConfBaseException as e:
            raise UserError(f"override {item!r}: {_explain(e)}") from None
    cfg: Config = OmegaConf.to_object(merged)
    try:
        _check(cfg.env)
    except ValueError as e:
        raise UserError(f"{path}{' with overrides' if overrides else ''}: env: {e}") from None
    if cfg.reward.window < 0:
        raise UserError(f"{path}{' with overrides' if overrides else ''}: reward.window must be >= 0, got {cfg.reward.window}")
    return cfg


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
