"""Metric-learning losses for TCN and the pretext trainers.

Each loss is a small ``nn.Module``. Shapes: embeddings (N, D); labels (N,) integers, rows with
equal labels are positives of each other. Under DDP a loss built with ``gather=True`` first
concatenates every rank's rows (``distributed.gather``), so negatives come from the whole
global batch and gradients reach this rank's rows exactly; in one process it is a no-op.

The four metric losses (triplet, npairs, InfoNCE, lifted) keep the call of the reference they are
tested against, and share one more (``MetricLoss.contrast``), so that a trainer picks a loss once.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed


def _full(x: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors (autocast) upcast to float32; float32 and float64 left as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def pairwise_distances(x: torch.Tensor, squared: bool) -> torch.Tensor:
    """(N, D) -> (N, N) Euclidean distances, computed as TF's ``pairwise_distance`` does:
    clamped at zero, an exact zero diagonal, and a finite gradient at zero distance."""
    x = _full(x)
    sq = (x * x).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * x @ x.T).clamp_min(0.0)
    d2 = d2 * (1.0 - torch.eye(len(x), device=x.device))
    if squared:
        return d2
    zero = d2 <= 0.0
    return torch.sqrt(d2 + zero.to(d2.dtype) * 1e-16) * (~zero).to(d2.dtype)


def _split_ties(sorted_vals: torch.Tensor) -> torch.Tensor:
    """Rows sorted ascending -> the same values, each run of equal values replaced by its mean,
    so a gradient reaching one of them is shared evenly among the ties (as TF's and torch's
    min/max reductions do)."""
    new = torch.ones_like(sorted_vals, dtype=torch.bool)
    new[:, 1:] = sorted_vals[:, 1:] != sorted_vals[:, :-1]
    group = new.long().cumsum(1) - 1
    sums = torch.zeros_like(sorted_vals).scatter_add(1, group, sorted_vals)
    counts = torch.zeros_like(sorted_vals).scatter_add(1, group, torch.ones_like(sorted_vals))
    return (sums / counts).gather(1, group)


def _gather_rows(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(distributed.gather(t) for t in tensors)


class MetricLoss(nn.Module):
    """A metric-learning loss with the call every trainer uses: ``contrast(anchor (B, D), candidates
    (M, D), anchor_labels (B,), candidate_labels (M,), anchor_ids (B, 2), candidate_ids (M, 2))``, the
    ids (episode, time) of each row for losses that exclude near frames."""

    def contrast(self, anchor, candidates, anchor_labels, candidate_labels, anchor_ids, candidate_ids) -> torch.Tensor:
        raise NotImplementedError


class _OverRows(MetricLoss):
    """A loss of one set of rows and their labels: anchors and candidates stacked."""

    def contrast(self, anchor, candidates, anchor_labels, candidate_labels, anchor_ids, candidate_ids) -> torch.Tensor:
        return self(torch.cat([anchor, candidates]), torch.cat([anchor_labels, candidate_labels]))


class TripletLoss(_OverRows):
    """Triplet margin loss over every anchor-positive pair of a batch, with negative mining.

    ``mining``:
      * ``"semihard"``: the semantics of TF's ``triplet_semihard_loss`` (Schroff et al. 2015,
        FaceNet; the original TCN code): for each anchor-positive pair, the closest negative
        strictly farther than the positive, else the farthest negative; mean of
        ``max(margin + d_ap - d_an, 0)`` over all pairs.
      * ``"hard"``: batch-hard (Hermans et al. 2017): per anchor, its farthest positive and
        closest negative; mean over anchors.
      * ``"all"``: mean of ``max(margin + d_ap - d_an, 0)`` over every valid triplet.

    Distances are squared Euclidean by default, as in TF. Anchors without a positive or without
    a negative contribute nothing.
    """

    def __init__(self, margin: float = 0.2, mining: str = "semihard", squared: bool = True, gather: bool = True) -> None:
        super().__init__()
        if mining not in ("semihard", "hard", "all"):
            raise ValueError(f"mining must be semihard, hard or all; got {mining!r}")
        self.margin, self.mining, self.squared, self.gather = margin, mining, squared, gather

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.gather:
            embeddings, labels = _gather_rows(embeddings, labels)
        d = pairwise_distances(embeddings, self.squared)
        n = len(labels)
        same = labels[:, None] == labels[None, :]
        pos = same & ~torch.eye(n, dtype=torch.bool, device=d.device)
        neg = ~same
        has_neg = neg.any(1)
        inf = torch.tensor(float("inf"), device=d.device)
        if self.mining == "hard":
            hp = torch.where(pos, d, -inf).amax(1)
            hn = torch.where(neg, d, inf).amin(1)
            valid = pos.any(1) & has_neg
            return F.relu(self.margin + hp - hn)[valid].sum() / valid.sum().clamp_min(1)
        # Each anchor's negative distances, sorted ascending; non-negatives pushed to +inf.
        neg_sorted, _ = torch.sort(torch.where(neg, d, inf), dim=1)
        num_neg = neg.sum(1, keepdim=True)
        pairs = pos & has_neg[:, None]
        if self.mining == "semihard":
            # first negative strictly farther than d_ap (searchsorted with right=True)
            idx = torch.searchsorted(neg_sorted.detach(), d.detach().contiguous(), right=True)
            shared = _split_ties(neg_sorted)
            outside = shared.gather(1, idx.clamp(max=n - 1))
            farthest = shared.gather(1, (num_neg - 1).clamp_min(0)).expand(-1, n)
            d_an = torch.where(idx < num_neg, outside, farthest)
            loss = F.relu(self.margin + d - d_an)
            return torch.where(pairs, loss, torch.zeros_like(loss)).sum() / pairs.sum().clamp_min(1)
        # all triplets: sum_k relu(c - d_ak) over negatives below c = margin + d_ap, by prefix sums
        c = (self.margin + d).contiguous()
        finite = torch.where(torch.isinf(neg_sorted), torch.zeros_like(neg_sorted), neg_sorted)
        prefix = torch.cat([torch.zeros(n, 1, device=d.device), finite.cumsum(1)], 1)
        count = torch.minimum(torch.searchsorted(neg_sorted.detach(), c.detach(), right=False), num_neg.expand(-1, n))
        per_pair = count * c - prefix.gather(1, count)
        total = torch.where(pairs, per_pair, torch.zeros_like(per_pair)).sum()
        return total / (pairs.sum(1) * num_neg.squeeze(1)).sum().clamp_min(1)


class NPairsLoss(MetricLoss):
    """Multi-class N-pair loss (Sohn 2016) as in TF's ``npairs_loss`` and the original TCN code:
    dot-product similarities of anchors to candidates, softmax cross-entropy toward the
    candidates with the anchor's label (uniform over several), plus ``reg_lambda`` times a
    quarter of the mean squared norms of anchors and candidates. No normalization.

    Shapes: anchor (B, D), candidates (M, D) (positives, optionally followed by extra
    negatives), anchor_labels (B,), candidate_labels (M,).
    """

    def __init__(self, reg_lambda: float = 0.002, gather: bool = True) -> None:
        super().__init__()
        self.reg_lambda, self.gather = reg_lambda, gather

    def forward(self, anchor, candidates, anchor_labels, candidate_labels) -> torch.Tensor:
        if self.gather:
            anchor, candidates, anchor_labels, candidate_labels = _gather_rows(anchor, candidates, anchor_labels, candidate_labels)
        anchor, candidates = _full(anchor), _full(candidates)
        reg = 0.25 * self.reg_lambda * ((anchor**2).sum(1).mean() + (candidates**2).sum(1).mean())
        logits = anchor @ candidates.T
        target = (anchor_labels[:, None] == candidate_labels[None, :]).to(logits.dtype)
        target = target / target.sum(1, keepdim=True).clamp_min(1.0)
        xent = -(target * F.log_softmax(logits, dim=1)).sum(1).mean()
        return xent + reg

    def contrast(self, anchor, candidates, anchor_labels, candidate_labels, anchor_ids, candidate_ids) -> torch.Tensor:
        return self(anchor, candidates, anchor_labels, candidate_labels)


class InfoNCELoss(MetricLoss):
    """InfoNCE / NT-Xent (van den Oord et al. 2018; Chen et al. 2020): cross-entropy of each
    anchor against all candidates, the candidates with its label being the positives.

    ``normalize`` uses cosine similarity; ``temperature`` divides the logits; ``symmetric``
    also scores candidates against anchors (paired rows, M == B) and averages both directions.
    With ``exclusion_radius`` r >= 0 and per-row ``(episode, time)`` ids, candidates from the
    anchor's episode within r frames that are not positives (temporal neighbours: neither
    positive nor true negative) are masked with -inf before the log-softmax, which is safe in
    bf16 and fp16, unlike a large finite constant. With ``exclude_self`` the anchors are the
    candidates (M == B) and each row's own entry is masked: SimCLR's NT-Xent over 2N views is
    ``loss(z, z, labels, labels)`` with the two views of an image sharing a label.

    Shapes: anchor (B, D), candidates (M, D), labels (B,) and (M,), ids (B, 2) and (M, 2).
    """

    def __init__(self, temperature: float = 0.1, normalize: bool = True, symmetric: bool = False,
                 exclusion_radius: int = -1, gather: bool = True, exclude_self: bool = False) -> None:
        super().__init__()
        self.temperature, self.normalize, self.symmetric = temperature, normalize, symmetric
        self.exclusion_radius, self.gather, self.exclude_self = exclusion_radius, gather, exclude_self

    def forward(self, anchor, candidates, anchor_labels, candidate_labels, anchor_ids=None, candidate_ids=None) -> torch.Tensor:
        use_ids = self.exclusion_radius >= 0
        if use_ids and (anchor_ids is None or candidate_ids is None):
            raise ValueError("exclusion_radius needs anchor_ids and candidate_ids (episode, time)")
        if self.gather:
            anchor, candidates, anchor_labels, candidate_labels = _gather_rows(anchor, candidates, anchor_labels, candidate_labels)
            if use_ids:
                anchor_ids, candidate_ids = _gather_rows(anchor_ids, candidate_ids)
        if self.normalize:
            anchor, candidates = F.normalize(anchor, dim=1), F.normalize(candidates, dim=1)
        logits = _full(anchor @ candidates.T) / self.temperature
        pos = anchor_labels[:, None] == candidate_labels[None, :]
        exclude = None
        if use_ids:
            same = anchor_ids[:, None, 0] == candidate_ids[None, :, 0]
            exclude = same & ((anchor_ids[:, None, 1] - candidate_ids[None, :, 1]).abs() <= self.exclusion_radius) & ~pos
        if self.exclude_self:
            if logits.shape[0] != logits.shape[1]:
                raise ValueError("exclude_self needs the anchors as candidates")
            eye = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
            pos = pos & ~eye
            exclude = eye if exclude is None else exclude | eye
        loss = self._direction(logits, pos, exclude)
        if self.symmetric:
            if logits.shape[0] != logits.shape[1]:
                raise ValueError("symmetric InfoNCE needs as many candidates as anchors")
            loss = 0.5 * (loss + self._direction(logits.T, pos.T, None if exclude is None else exclude.T))
        return loss

    @staticmethod
    def _direction(logits: torch.Tensor, pos: torch.Tensor, exclude: torch.Tensor | None) -> torch.Tensor:
        if exclude is not None:
            logits = logits.masked_fill(exclude, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        has_pos = pos.any(1)
        mean_pos = torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(1) / pos.sum(1).clamp_min(1)
        return -mean_pos[has_pos].mean()

    def contrast(self, anchor, candidates, anchor_labels, candidate_labels, anchor_ids, candidate_ids) -> torch.Tensor:
        return self(anchor, candidates, anchor_labels, candidate_labels, anchor_ids, candidate_ids)


class LiftedStructuredLoss(_OverRows):
    """Lifted structured embedding loss (Oh Song et al. 2016), as TF's ``lifted_struct_loss``:
    for each positive pair (i, j), ``J = log(sum_k exp(m - D_ik) + sum_l exp(m - D_jl)) + D_ij``
    over the negatives k of i and l of j (Euclidean distances), and the loss is
    ``1 / (2|P|) * sum over unordered positive pairs of max(J, 0)^2``, with log-sum-exp for stability.
    """

    def __init__(self, margin: float = 1.0, gather: bool = True) -> None:
        super().__init__()
        self.margin, self.gather = margin, gather

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.gather:
            embeddings, labels = _gather_rows(embeddings, labels)
        d = pairwise_distances(embeddings, squared=False)
        n = len(labels)
        same = labels[:, None] == labels[None, :]
        pos = same & ~torch.eye(n, dtype=torch.bool, device=d.device)
        row = torch.logsumexp((self.margin - d).masked_fill(same, float("-inf")), dim=1)  # -inf without negatives
        j = torch.logaddexp(row[:, None], row[None, :]) + d
        j = torch.where(pos & torch.isfinite(j), j, torch.zeros_like(j))
        return 0.5 * (F.relu(j) ** 2).sum() / pos.sum().clamp_min(1)


class NCELoss(nn.Module):
    """Noise-contrastive estimation against a memory bank (Wu et al. 2018), as PIRL uses it
    (Misra & van der Maaten 2019; VISSL's ``NCECriterion``): with ``p = exp(s / T) / Z`` for the
    cosine similarity s of a representation to bank entries, the positive is classified as data and
    each of the K negatives as noise from the uniform distribution over the ``num_data`` entries:

        loss = -mean_i [ log p_i+ / (p_i+ + K / n) + sum_k log (K / n) / (p_ik + K / n) ].

    ``Z`` estimates the partition function once, on the first batch: the mean of ``exp(s / T)``
    over it times ``n`` (averaged over ranks under DDP); it is a buffer, saved in checkpoints.

    Shapes: representations (B, D), positives (B, D) (their bank entries), negatives (B, K, D).
    """

    def __init__(self, num_data: int, temperature: float = 0.07) -> None:
        super().__init__()
        self.num_data, self.temperature = num_data, temperature
        self.register_buffer("Z", torch.tensor(-1.0, dtype=torch.float64))

    def forward(self, v: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        v = F.normalize(_full(v), dim=1)
        s = torch.cat([(v * positives).sum(1, keepdim=True), torch.einsum("bd,bkd->bk", v, negatives)], 1)
        e = torch.exp(s / self.temperature)
        if self.Z < 0:
            z = torch.tensor(e.detach().mean().item() * self.num_data, dtype=torch.float64, device=self.Z.device)
            self.Z.fill_(distributed.all_reduce_mean(float(z), z.device))
        p = e / self.Z.to(e.dtype)
        noise = negatives.shape[1] / self.num_data
        data = torch.log(p[:, 0] / (p[:, 0] + noise))
        rest = torch.log(noise / (p[:, 1:] + noise)).sum(1)
        return -(data + rest).mean()


class MemoryInfoNCELoss(nn.Module):
    """InfoNCE against a memory bank: cross-entropy of each representation's similarities (cosine /
    ``temperature``) to its positive bank entry and its K negative entries, the positive as the class
    (VISSL's ``nce_loss_with_memory`` with ``loss_type: cross_entropy``). Same shapes as ``NCELoss``."""

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, v: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        v = F.normalize(_full(v), dim=1)
        s = torch.cat([(v * positives).sum(1, keepdim=True), torch.einsum("bd,bkd->bk", v, negatives)], 1)
        return F.cross_entropy(s / self.temperature, torch.zeros(len(v), dtype=torch.long, device=v.device))


class CycleConsistencyLoss(nn.Module):
    """Temporal cycle-consistency, cycle-back regression with variance (Dwibedi et al. 2019, Eq. 5-7),
    which XIRL (Zakka et al. 2021) uses to align videos of different embodiments doing one task.

    For frame i of sequence u and another sequence v: the soft nearest neighbour of u_i in v,
    ``v~ = sum_j softmax_j(-|u_i - v_j|^2 / temperature) v_j``, cycles back to u with weights
    ``beta_k = softmax_k(-|v~ - u_k|^2 / temperature)``; with ``mu = sum_k beta_k t_k`` and
    ``var = sum_k beta_k (t_k - mu)^2`` the loss is ``(t_i - mu)^2 / var + variance_lambda * log var``,
    averaged over every frame of every ordered pair of distinct sequences. Times are fractions of
    their episode, so sequences of different lengths and speeds align by progress.

    Shapes: embeddings (S, N, D), times (S, N); S >= 2.
    """

    def __init__(self, temperature: float = 0.1, variance_lambda: float = 0.001) -> None:
        super().__init__()
        self.temperature, self.variance_lambda = temperature, variance_lambda

    def forward(self, z: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        z, times = _full(z), times.to(_full(z).dtype)
        s = len(z)
        if s < 2:
            raise ValueError("cycle consistency needs at least two sequences")
        sq = (z * z).sum(-1)  # (S, N)
        # d2[a, b, i, j] = |z_a,i - z_b,j|^2, without cdist's square root (finite gradients at 0)
        d2 = (sq[:, None, :, None] + sq[None, :, None, :] - 2 * torch.einsum("aid,bjd->abij", z, z)).clamp_min(0)
        a, b = (~torch.eye(s, dtype=torch.bool, device=z.device)).nonzero(as_tuple=True)
        soft_nn = torch.softmax(-d2[a, b] / self.temperature, -1) @ z[b]  # (P, N, D): u_i's neighbour in v
        back = ((soft_nn * soft_nn).sum(-1)[:, :, None] + sq[a][:, None, :]
                - 2 * soft_nn @ z[a].transpose(1, 2)).clamp_min(0)
        beta = torch.softmax(-back / self.temperature, -1)  # (P, N, N): the cycle's landing frames in u
        t = times[a]  # (P, N)
        mu = (beta * t[:, None, :]).sum(-1)
        var = (beta * (t[:, None, :] - mu[..., None]) ** 2).sum(-1).clamp_min(1e-12)
        return ((t - mu) ** 2 / var + self.variance_lambda * var.log()).mean()


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """The identity forward; the gradient multiplied by ``-scale`` backward (Ganin & Lempitsky 2015)."""
    return _ReverseGradient.apply(x, scale)


class DomainConfusionLoss(nn.Module):
    """Domain-adversarial training (Ganin & Lempitsky 2015), as Stadie et al. 2017 use it to imitate from
    third-person video: a classifier ``head`` learns the domain (here the embodiment) of each embedding by
    cross-entropy, and the embeddings receive the gradient of that loss reversed and scaled by ``weight``,
    so the network learns features from which the embodiment cannot be told.

    Shapes: embeddings (N, D), labels (N,) int64 in [0, domains). Returns (loss, accuracy of the head).
    """

    def __init__(self, dim: int, hidden: int, domains: int = 2, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight
        self.head = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, domains))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.head(reverse_gradient(_full(z), self.weight))
        return F.cross_entropy(logits, labels), (logits.argmax(-1) == labels).float().mean().detach()


class ArrowOfTimeLoss(nn.Module):
    """The arrow of time as a training signal (Wei et al. 2018, "Learning and Using the Arrow of Time"):
    a ``head`` maps each embedding to a scalar potential g, and for every pair of frames of the same
    episode at least ``gap`` steps apart, sigmoid(g(z_j) - g(z_i)) is the probability that frame j comes
    after frame i (a Bradley-Terry ranking, so the prediction is antisymmetric), trained by binary
    cross-entropy. What changes irreversibly during an episode, the liquid leaving the cup, is what
    orders frames that look alike otherwise (the cup at rest before and after the pour), so the
    embedding has to carry it.

    Shapes: z (N, D) and z_other (N, D), the same instants (e.g. from two cameras), whose episode and
    time are (N,) int64 each; pairs are (z_i, z_other_j). Returns (loss, accuracy of the order predicted
    over the pairs).
    """

    def __init__(self, dim: int, hidden: int, gap: int = 1) -> None:
        super().__init__()
        self.gap = gap
        self.head = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, z, z_other, episode, time) -> tuple[torch.Tensor, torch.Tensor]:
        g, g_other = self.head(_full(z))[:, 0], self.head(_full(z_other))[:, 0]
        dt = time[None, :] - time[:, None]
        pairs = (episode[:, None] == episode[None, :]) & (dt.abs() >= self.gap)
        if not pairs.any():
            return z.sum() * 0.0, torch.ones((), device=z.device)
        logits = (g_other[None, :] - g[:, None])[pairs]
        later = (dt[pairs] > 0).to(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, later)
        return loss, ((logits > 0).to(later.dtype) == later).float().mean().detach()


LOSSES = ("triplet", "npairs", "infonce", "lifted")
