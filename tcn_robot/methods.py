"""The training methods: one registry drives the commands' choices, the config sections and the docs.

Every method trains the same ``EmbeddingNet`` (``models.py``), so that Table I compares objectives on
one architecture; its heads sit on the network's embedding. A method's settings are the config section
named after it (``simclr.temperature=0.2``); they live here, as plain dataclasses, so that reading a
config imports no torch. Its implementation (``module:Class``) is imported when it trains.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module


BASELINES = ("random", "random-features", "pixels")  # embeddings without training (encoders.py)


@dataclass
class TCNSection:
    """``tcn.*``: the TCN objective and its batches (Sermanet et al. 2017)."""

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
    # aligning embodiments without twin recordings: cycle consistency (Dwibedi et al. 2019, as XIRL) between
    # human and robot demonstrations, added to the TCN loss with this weight (0: off)
    align_weight: float = 0.0
    align_sequences: int = 2  # demonstrations per batch, embodiments in turn
    align_frames: int = 32  # time steps of each
    align_temperature: float = 0.1
    align_variance_lambda: float = 0.001
    # domain confusion between embodiments (Ganin & Lempitsky 2015's gradient reversal, as Stadie et al. 2017's
    # third-person imitation uses it): a head classifies the embodiment of the human and robot demonstrations'
    # embeddings, and the network gets the reversed gradient of its loss with this weight (0: off)
    domain_weight: float = 0.0
    domain_hidden: int = 64  # width of the embodiment classifier's hidden layer
    # which frames the embodiment classifier reads: demonstrations (the human and robot demonstrations drawn
    # beside each batch, as cycle consistency reads them) or batch (every frame of the TCN batch, labelled by
    # who is filmed in its view; random exploration is the robot's)
    domain_frames: str = "demonstrations"
    # the arrow of time (Wei et al. 2018): a head orders every pair of the batch's frames of one episode
    # (anchor against positive, so across cameras) at least order_gap steps apart, with this weight (0: off);
    # what changes irreversibly, the liquid leaving the cup, is what orders frames that look alike otherwise
    order_weight: float = 0.0
    order_gap: int = 5
    order_hidden: int = 64


@dataclass
class SimCLRSection:
    """``simclr.*``: SimCLR (Chen et al. 2020): two augmented views of each frame, NT-Xent over the 2N views."""

    batch_size: int = 64  # frames per step (each seen twice)
    temperature: float = 0.5
    projector_hidden: int = 512  # MLP projector on the embedding; downstream uses the embedding below it
    projector_dim: int = 128
    crop_scale: tuple[float, float] = (0.2, 1.0)
    jitter_strength: float = 0.5  # s: brightness, contrast, saturation 0.8 s, hue 0.2 s
    jitter_prob: float = 0.8
    grayscale_prob: float = 0.2
    blur_prob: float = 0.0  # Gaussian blur (the paper's 0.5 is for ImageNet-sized images)


@dataclass
class RotationSection:
    """``rotation.*``: RotNet (Gidaris et al. 2018): all four rotations of each frame, 4-way classification."""

    batch_size: int = 32  # frames per step (each in four rotations)
    head_hidden: int = 256  # MLP classifier on the embedding (0: linear)


@dataclass
class TileSection:
    """The 3x3 tiles of jigsaw and PIRL: a random crop inside each cell (gaps, so that edges do not
    give the answer), each tile normalized by its own mean and std."""

    grid: int = 3
    tile_fraction: float = 0.8  # side of a tile's crop as a fraction of its cell's side
    tile_size: int = 32  # tiles are resized to this before the network
    grayscale_prob: float = 0.66  # against chromatic aberration (Noroozi & Favaro 2016)


@dataclass
class JigsawSection:
    """``jigsaw.*``: jigsaw puzzles (Noroozi & Favaro 2016): which of P permutations shuffled the 3x3 tiles."""

    batch_size: int = 14  # frames per step (nine tiles each)
    permutations: int = 100  # a fixed set of maximal Hamming distance, chosen greedily from a seed
    permutation_seed: int = 0
    head_hidden: int = 512  # on the nine tiles' embeddings, concatenated
    tiles: TileSection = field(default_factory=TileSection)


@dataclass
class RelPosSection:
    """``relpos.*``: relative position (Doersch et al. 2015): which of the 8 neighbours a patch is of the centre patch."""

    batch_size: int = 64  # pairs per step
    patch: int = 16  # patch side in frame pixels (at the recorded size)
    gap: int = 4  # pixels between neighbouring patches
    jitter: int = 2  # random shift of each patch, up to this many pixels
    tile_size: int = 32  # patches are resized to this before the network
    aberration: str = "grayscale"  # against chromatic aberration: grayscale | noise (two channels replaced by noise)
    aberration_prob: float = 0.5  # the share of patches treated so
    head_hidden: int = 256  # on the two patches' embeddings, concatenated


@dataclass
class PIRLSection:
    """``pirl.*``: PIRL (Misra & van der Maaten 2019): a frame and its jigsaw-shuffled tiles as positives,
    NCE against a memory bank of every training frame."""

    batch_size: int = 12  # frames per step (plus nine tiles each)
    # nce: the paper's noise-contrastive estimation; infonce: cross-entropy over the positive and the
    # negatives (VISSL's loss_type cross_entropy), the default: measured to learn where nce did not (docs/pretext.md)
    loss: str = "infonce"
    temperature: float = 0.07
    negatives: int = 1024  # bank entries drawn as negatives per positive
    momentum: float = 0.5  # bank update: m <- momentum m + (1 - momentum) f(v_I), renormalized
    projection_dim: int = 128
    loss_weight: float = 0.5  # lambda: lambda L(m, g(v_T)) + (1 - lambda) L(m, f(v_I))
    permutations: int = 100
    permutation_seed: int = 0
    tiles: TileSection = field(default_factory=TileSection)


@dataclass
class CPCSection:
    """``cpc.*``: contrastive predictive coding (van den Oord et al. 2018; Henaff et al. 2019) over time:
    a GRU summarizes the embeddings of past frames, a linear map per step ahead predicts the future ones."""

    batch_size: int = 8  # windows per step
    window: int = 16  # frames per window
    stride: int = 2  # steps between the window's frames
    steps_ahead: int = 4  # K: predict 1..K frames ahead
    context_dim: int = 128  # the GRU's state
    temperature: float = 0.1


@dataclass
class ShuffleLearnSection:
    """``shuffle_learn.*``: Shuffle & Learn (Misra et al. 2016): are three frames in temporal order?"""

    batch_size: int = 42  # tuples per step (three frames each)
    window: int = 30  # steps a tuple's five candidate frames are drawn from, where the video moves
    positive_share: float = 0.25  # tuples in order (the paper's share)
    head_hidden: int = 256  # on the three frames' embeddings, concatenated


@dataclass
class CVRLSection:
    """``cvrl.*``: CVRL (Qian et al. 2020): two clips of one video attract, clips of other videos repel."""

    batch_size: int = 8  # clip pairs per step
    clip_length: int = 8  # frames per clip (the network's model.context)
    stride: int = 2  # steps between a clip's frames (model.context_stride)
    max_gap: int = 0  # largest gap between the two clips' starts (0: as far as the episode allows)
    temperature: float = 0.1
    projector_hidden: int = 512
    projector_dim: int = 128
    crop_scale: tuple[float, float] = (0.3, 1.0)  # one crop and one colour jitter per clip
    jitter_strength: float = 0.5
    jitter_prob: float = 0.8
    grayscale_prob: float = 0.2


@dataclass(frozen=True)
class MethodSpec:
    section: str  # the config section of its settings
    config: type
    implementation: str  # "module:Class", imported when the method trains
    summary: str  # one line for --help and the docs
    ranges: dict = field(default_factory=dict)  # key -> (low, high), checked when a config is read
    choices: dict = field(default_factory=dict)  # key -> allowed strings


TILE_RANGES = {"tiles.grid": (2, 4), "tiles.tile_fraction": (0.3, 1.0), "tiles.tile_size": (8, 1024), "tiles.grayscale_prob": (0.0, 1.0)}


METHODS: dict[str, MethodSpec] = {
    "tcn": MethodSpec(
        "tcn", TCNSection, "tcn_robot.train.tcn:TCNMethod",
        "Time-Contrastive Networks: the same instant from two views attracts, other instants repel",
        {"sequences_per_batch": (1, 4096), "frames_per_sequence": (2, 4096), "margin": (0.0, 10.0), "reg_lambda": (0.0, 10.0),
         "temperature": (1e-4, 100.0), "exclusion_radius": (-1, 10**6), "lifted_margin": (0.0, 100.0), "pos_radius": (1, 10**6),
         "neg_radius": (2, 10**6), "align_weight": (0.0, 1000.0), "align_sequences": (2, 4096), "align_frames": (2, 4096),
         "align_temperature": (1e-4, 100.0), "align_variance_lambda": (0.0, 100.0), "domain_weight": (0.0, 1000.0),
         "domain_hidden": (1, 65536), "order_weight": (0.0, 1000.0), "order_gap": (1, 10**6), "order_hidden": (1, 65536)},
        {"mode": ("multiview", "singleview"), "loss": ("triplet", "npairs", "infonce", "lifted"),
         "negatives": ("sequence", "batch"), "mining": ("semihard", "hard", "all"),
         "domain_frames": ("demonstrations", "batch")}),
    "simclr": MethodSpec(
        "simclr", SimCLRSection, "tcn_robot.pretext.simclr:SimCLR",
        "SimCLR: two augmented views of a frame attract, other frames repel (NT-Xent)",
        {"batch_size": (2, 65536), "temperature": (1e-3, 100.0), "projector_hidden": (1, 65536), "projector_dim": (1, 65536),
         "crop_scale": (0.01, 1.0), "jitter_strength": (0.0, 1.0), "jitter_prob": (0.0, 1.0), "grayscale_prob": (0.0, 1.0),
         "blur_prob": (0.0, 1.0)}),
    "rotation": MethodSpec(
        "rotation", RotationSection, "tcn_robot.pretext.rotation:Rotation",
        "RotNet: predict which of four rotations turned a frame", {"batch_size": (1, 65536), "head_hidden": (0, 65536)}),
    "jigsaw": MethodSpec(
        "jigsaw", JigsawSection, "tcn_robot.pretext.jigsaw:Jigsaw",
        "jigsaw puzzles: predict which permutation shuffled a frame's 3x3 tiles",
        {"batch_size": (1, 65536), "permutations": (2, 1000), "permutation_seed": (0, 2**31 - 1), "head_hidden": (0, 65536),
         **TILE_RANGES}),
    "relpos": MethodSpec(
        "relpos", RelPosSection, "tcn_robot.pretext.relpos:RelativePosition",
        "relative position: predict where a patch lies around the centre patch",
        {"batch_size": (1, 65536), "patch": (2, 1024), "gap": (0, 1024), "jitter": (0, 1024), "tile_size": (8, 1024),
         "aberration_prob": (0.0, 1.0), "head_hidden": (0, 65536)},
        {"aberration": ("grayscale", "noise")}),
    "pirl": MethodSpec(
        "pirl", PIRLSection, "tcn_robot.pretext.pirl:PIRL",
        "PIRL: a frame and its shuffled tiles attract, memory-bank frames repel (NCE)",
        {"batch_size": (1, 65536), "temperature": (1e-3, 100.0), "negatives": (1, 10**6), "momentum": (0.0, 1.0),
         "projection_dim": (1, 65536), "loss_weight": (0.0, 1.0), "permutations": (2, 1000),
         "permutation_seed": (0, 2**31 - 1), **TILE_RANGES},
        {"loss": ("nce", "infonce")}),
    "cpc": MethodSpec(
        "cpc", CPCSection, "tcn_robot.pretext.cpc:CPC",
        "CPC: from the past frames of a video, tell its frames 1..K steps ahead from other frames (InfoNCE)",
        {"batch_size": (1, 65536), "window": (2, 4096), "stride": (1, 1000), "steps_ahead": (1, 1000), "context_dim": (1, 65536),
         "temperature": (1e-3, 100.0)}),
    "shuffle-learn": MethodSpec(
        "shuffle_learn", ShuffleLearnSection, "tcn_robot.pretext.shuffle_learn:ShuffleLearn",
        "Shuffle & Learn: are three frames of a moving window in temporal order?",
        {"batch_size": (1, 65536), "window": (5, 10**5), "positive_share": (0.01, 0.99), "head_hidden": (0, 65536)}),
    "cvrl": MethodSpec(
        "cvrl", CVRLSection, "tcn_robot.pretext.cvrl:CVRL",
        "CVRL: two clips of one video attract, clips of other videos repel (a clip encoder, causal)",
        {"batch_size": (2, 65536), "clip_length": (2, 256), "stride": (1, 256), "max_gap": (0, 10**6), "temperature": (1e-3, 100.0),
         "projector_hidden": (1, 65536), "projector_dim": (1, 65536), "crop_scale": (0.01, 1.0), "jitter_strength": (0.0, 1.0),
         "jitter_prob": (0.0, 1.0), "grayscale_prob": (0.0, 1.0)}),
}


def method_class(name: str) -> type:
    """The implementation of the method ``name`` (imports torch)."""
    module, cls = METHODS[name].implementation.split(":")
    return getattr(import_module(module), cls)
