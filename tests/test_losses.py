"""Every loss against a naive loop-based reference written here: values and gradients."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from tcn_robot.losses import ArrowOfTimeLoss, InfoNCELoss, LiftedStructuredLoss, MemoryInfoNCELoss, NCELoss, NPairsLoss, TripletLoss


@pytest.fixture(autouse=True)
def float64():
    """The comparisons run in float64; the default is restored so other test modules are unaffected."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def dist(a, b, squared):
    d2 = ((a - b) ** 2).sum()
    return d2 if squared else torch.sqrt(d2 + 1e-16) if d2 <= 0 else torch.sqrt(d2)


def naive_triplet(x, y, margin, mining, squared):
    n = len(y)
    losses = []
    negs = lambda i: [k for k in range(n) if y[k] != y[i]]
    if mining == "hard":
        for i in range(n):
            ps = [j for j in range(n) if j != i and y[j] == y[i]]
            if not ps or not negs(i):
                continue
            hp = torch.stack([dist(x[i], x[j], squared) for j in ps]).max()
            hn = torch.stack([dist(x[i], x[k], squared) for k in negs(i)]).min()
            losses.append(torch.relu(margin + hp - hn))
        return torch.stack(losses).mean()
    for i in range(n):
        for j in range(n):
            if i == j or y[i] != y[j] or not negs(i):
                continue
            dap = dist(x[i], x[j], squared)
            dn = [dist(x[i], x[k], squared) for k in negs(i)]
            if mining == "semihard":  # torch's full min/max share the gradient among ties, as TF does
                farther = [v for v in dn if v > dap]
                dan = torch.stack(farther).min() if farther else torch.stack(dn).max()
                losses.append(torch.relu(margin + dap - dan))
            else:
                for v in dn:
                    losses.append(torch.relu(margin + dap - v))
    return torch.stack(losses).mean()


def naive_npairs(a, c, ya, yc, reg):
    total = 0
    for i in range(len(a)):
        logits = torch.stack([a[i] @ c[k] for k in range(len(c))])
        pos = [k for k in range(len(c)) if yc[k] == ya[i]]
        lse = torch.logsumexp(logits, 0)
        total = total - sum(logits[k] - lse for k in pos) / len(pos)
    l2 = 0.25 * reg * (sum((v**2).sum() for v in a) / len(a) + sum((v**2).sum() for v in c) / len(c))
    return total / len(a) + l2


def naive_infonce(a, c, ya, yc, t, ida=None, idc=None, radius=-1, symmetric=False):
    def one(a, c, ya, yc, ida, idc):
        a = a / a.norm(dim=1, keepdim=True)
        c = c / c.norm(dim=1, keepdim=True)
        losses = []
        for i in range(len(a)):
            keep = [k for k in range(len(c)) if yc[k] == ya[i] or radius < 0 or not (
                ida[i][0] == idc[k][0] and abs(ida[i][1] - idc[k][1]) <= radius)]
            logits = torch.stack([a[i] @ c[k] / t for k in keep])
            lse = torch.logsumexp(logits, 0)
            pos = [n for n, k in enumerate(keep) if yc[k] == ya[i]]
            losses.append(-sum(logits[n] - lse for n in pos) / len(pos))
        return torch.stack(losses).mean()

    loss = one(a, c, ya, yc, ida, idc)
    return 0.5 * (loss + one(c, a, yc, ya, idc, ida)) if symmetric else loss


def naive_lifted(x, y, m):
    n = len(y)
    d = [[dist(x[i], x[j], False) for j in range(n)] for i in range(n)]
    total, pairs = 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            if y[i] != y[j]:
                continue
            pairs += 1
            terms = [torch.exp(m - d[i][k]) for k in range(n) if y[k] != y[i]] + [torch.exp(m - d[j][k]) for k in range(n) if y[k] != y[j]]
            jij = torch.log(sum(terms)) + d[i][j]
            total = total + torch.relu(jij) ** 2
    return total / (2 * pairs)


def naive_ntxent(z, y, t):
    """SimCLR's NT-Xent over the 2N rows of z: each row against every other row."""
    z = z / z.norm(dim=1, keepdim=True)
    losses = []
    for i in range(len(z)):
        others = [k for k in range(len(z)) if k != i]
        logits = torch.stack([z[i] @ z[k] / t for k in others])
        lse = torch.logsumexp(logits, 0)
        pos = [n for n, k in enumerate(others) if y[k] == y[i]]
        losses.append(-sum(logits[n] - lse for n in pos) / len(pos))
    return torch.stack(losses).mean()


def naive_nce(v, pos, neg, num_data, t):
    """Wu et al.'s NCE with the partition function estimated on this batch (PIRL's loss)."""
    v = v / v.norm(dim=1, keepdim=True)
    e = [[torch.exp(v[i] @ pos[i] / t)] + [torch.exp(v[i] @ neg[i, k] / t) for k in range(neg.shape[1])] for i in range(len(v))]
    z = float(sum(x.item() for row in e for x in row) / (len(v) * (1 + neg.shape[1])) * num_data)
    noise = neg.shape[1] / num_data
    total = 0
    for i, row in enumerate(e):
        total = total - torch.log((row[0] / z) / (row[0] / z + noise))
        for x in row[1:]:
            total = total - torch.log(noise / (x / z + noise))
    return total / len(v)


def inputs(kind, n=12, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    if kind == "ties":
        x[3] = x[0]
        x[7] = x[5]
        x[8] = x[2]
    if kind == "equal":
        x = torch.ones(n, d)
    y = torch.arange(n) // 2
    return x.requires_grad_(), y


def check(fast_fn, naive_fn, x, *rest):
    fast = fast_fn(x, *rest)
    (gf,) = torch.autograd.grad(fast, x)
    slow = naive_fn(x, *rest)
    (gs,) = torch.autograd.grad(slow, x)
    assert torch.allclose(fast, slow, atol=1e-9), (fast.item(), slow.item())
    assert torch.isfinite(gf).all() and torch.allclose(gf, gs, atol=1e-7)


KINDS = ["random", "ties", "equal"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mining", ["semihard", "hard", "all"])
@pytest.mark.parametrize("squared", [True, False])
def test_triplet_matches_naive(kind, mining, squared):
    x, y = inputs(kind)
    check(lambda x, y: TripletLoss(0.5, mining, squared)(x, y), lambda x, y: naive_triplet(x, y, 0.5, mining, squared), x, y)


@pytest.mark.parametrize("kind", KINDS)
def test_npairs_matches_naive(kind):
    x, y = inputs(kind)
    extra, _ = inputs("random", n=4, seed=1)
    c = torch.cat([x[1::2], extra.detach()])
    yc = torch.cat([y[1::2], torch.tensor([-1, -2, -3, -4])])
    check(lambda a, ya: NPairsLoss(0.002)(a, c, ya, yc), lambda a, ya: naive_npairs(a, c, ya, yc, 0.002), x[::2].detach().requires_grad_(), y[::2])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("radius", [-1, 2])
def test_infonce_matches_naive(kind, symmetric, radius):
    x, y = inputs(kind, n=16)
    a, c = x[::2].detach().requires_grad_(), x[1::2].detach()
    ya, yc = y[::2], y[1::2]
    ids = torch.stack([torch.arange(8) // 4, torch.arange(8) % 4], 1)  # two episodes of four time steps
    check(lambda a: InfoNCELoss(0.2, symmetric=symmetric, exclusion_radius=radius)(a, c, ya, yc, ids, ids),
          lambda a: naive_infonce(a, c, ya, yc, 0.2, ids.tolist(), ids.tolist(), radius, symmetric), a)


@pytest.mark.parametrize("kind", KINDS)
def test_lifted_matches_naive(kind):
    x, y = inputs(kind)
    check(lambda x, y: LiftedStructuredLoss(1.0)(x, y), lambda x, y: naive_lifted(x, y, 1.0), x, y)


@pytest.mark.parametrize("kind", ["random", "ties"])
def test_ntxent_matches_naive(kind):
    x, _ = inputs(kind)
    y = torch.arange(len(x)) % (len(x) // 2)  # SimCLR's layout: first views, then second views
    check(lambda x, y: InfoNCELoss(0.5, exclude_self=True, gather=False)(x, x, y, y), lambda x, y: naive_ntxent(x, y, 0.5), x, y)


def test_nce_matches_naive_and_keeps_its_partition_estimate():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(6, 5, generator=g).requires_grad_()
    bank = torch.nn.functional.normalize(torch.randn(50, 5, generator=g), dim=1)
    pos, neg = bank[:6], bank[torch.randint(50, (6, 7), generator=g)]
    loss_fn = NCELoss(num_data=50, temperature=0.07)
    check(lambda v, p, n: loss_fn(v, p, n), lambda v, p, n: naive_nce(v, p, n, 50, 0.07), v, pos, neg)
    z = loss_fn.Z.item()
    assert z > 0
    loss_fn(v.detach() + 1.0, pos, neg)  # a later batch is scored against the first batch's estimate
    assert loss_fn.Z.item() == z and "Z" in loss_fn.state_dict()


def test_memory_infonce_matches_naive():
    g = torch.Generator().manual_seed(2)
    v = torch.randn(5, 4, generator=g).requires_grad_()
    bank = torch.nn.functional.normalize(torch.randn(30, 4, generator=g), dim=1)
    pos, neg = bank[:5], bank[torch.randint(30, (5, 6), generator=g)]

    def naive(v, p, n):
        v = v / v.norm(dim=1, keepdim=True)
        total = 0
        for i in range(len(v)):
            logits = torch.stack([v[i] @ p[i]] + [v[i] @ n[i, k] for k in range(n.shape[1])]) / 0.07
            total = total - (logits[0] - torch.logsumexp(logits, 0))
        return total / len(v)

    check(lambda v, p, n: MemoryInfoNCELoss(0.07)(v, p, n), naive, v, pos, neg)


def test_arrow_of_time_matches_naive():
    """Every (i, j) of one episode at least ``gap`` apart, one at a time: -log sigmoid(+-(g_j - g_i))."""
    g = torch.Generator().manual_seed(3)
    z, z2 = torch.randn(8, 4, generator=g).requires_grad_(), torch.randn(8, 4, generator=g)
    ep = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    t = torch.tensor([0, 3, 7, 9, 1, 2, 6, 8])
    loss_fn = ArrowOfTimeLoss(4, 5, gap=2)

    def naive(z, z2):
        terms = []
        for i in range(len(z)):
            for j in range(len(z2)):
                if ep[i] == ep[j] and abs(int(t[j]) - int(t[i])) >= 2:
                    d = loss_fn.head(z2[j])[0] - loss_fn.head(z[i])[0]
                    terms.append(-torch.nn.functional.logsigmoid(d if t[j] > t[i] else -d))
        return torch.stack(terms).mean()

    check(lambda z, z2: loss_fn(z, z2, ep, t)[0], naive, z, z2)


def test_arrow_of_time_learns_the_order_a_feature_carries_and_cannot_without_one():
    """Embeddings whose first coordinate grows with time (the rest noise): the head learns the order,
    accuracy near 1 on new draws; with that coordinate shuffled across time, chance on new draws."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(20).repeat(4)
    ep = torch.arange(4).repeat_interleave(20)

    def draw(informative):
        signal = t.double() / 20 if informative else t[torch.randperm(80, generator=g)].double() / 20
        return torch.cat([signal[:, None], torch.randn(80, 6, generator=g)], 1)

    for informative in (True, False):
        torch.manual_seed(0)
        loss_fn = ArrowOfTimeLoss(7, 16, gap=3)
        opt = torch.optim.Adam(loss_fn.parameters(), lr=0.01)
        z, z2 = draw(informative), draw(informative)
        for _ in range(300):
            loss, _ = loss_fn(z, z2, ep, t)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            _, accuracy = loss_fn(draw(informative), draw(informative), ep, t)
        assert (accuracy > 0.95) if informative else (0.35 < accuracy < 0.65), (informative, accuracy)


def test_infonce_masking_is_finite_in_bf16():
    x, y = inputs("random", n=16)
    a, c = x[::2].detach().bfloat16().requires_grad_(), x[1::2].detach().bfloat16()
    ids = torch.stack([torch.zeros(8, dtype=torch.long), torch.arange(8)], 1)  # one episode: all but the positive excluded at r=7
    loss = InfoNCELoss(0.1, exclusion_radius=7)(a, c, y[::2], y[1::2], ids, ids)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(a.grad.float()).all()


def test_semihard_picks_the_closest_negative_strictly_farther_than_the_positive():
    """1-D points: anchor 0 and positive 1 (label 0); negatives at 0.5, 2 and 3.
    Squared distances from 1: 0.25, 1 (a tie with the positive: not farther), 4 -> picks 4.
    From 0: 0.25, 4, 9 -> picks 4. Loss = mean(margin + 1 - 4) over the two pairs."""
    x = torch.tensor([[0.0], [1.0], [0.5], [2.0], [3.0]])
    y = torch.tensor([0, 0, 1, 2, 3])
    assert TripletLoss(margin=5.0)(x, y).item() == pytest.approx(2.0)
    # move the negatives inside the positive distance: none farther -> the farthest (easiest) one
    x2 = torch.tensor([[0.0], [1.0], [0.5], [0.6], [0.4]])
    # from anchor 0: d_ap = 1, negatives 0.25, 0.36, 0.16 -> 0.36; from 1: 0.25, 0.16, 0.36 -> 0.36
    assert TripletLoss(margin=5.0)(x2, y).item() == pytest.approx(5.0 + 1.0 - 0.36)
    assert TripletLoss(margin=5.0, mining="hard")(x2, y).item() == pytest.approx(5.0 + 1.0 - 0.16)


# ----------------------------------------------------------------- DDP gathering
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make(name):
    return {
        "triplet": lambda e, y: TripletLoss(0.5)(e, y),
        "npairs": lambda e, y: NPairsLoss(0.002)(e[0::2], e[1::2], y[0::2], y[1::2]),
        "infonce": lambda e, y: InfoNCELoss(0.2, symmetric=True)(e[0::2], e[1::2], y[0::2], y[1::2]),
        "lifted": lambda e, y: LiftedStructuredLoss(1.0)(e, y),
        "ntxent": lambda e, y: InfoNCELoss(0.5, exclude_self=True)(e, e, y, y),  # SimCLR's call
    }[name]


NAMES = ("triplet", "npairs", "infonce", "lifted", "ntxent")


def _labels(name, n=16, world=2):
    """Pairs within each rank's rows; SimCLR's layout for ntxent: each rank's first views, then its
    second views, labels offset by rank (``SimCLR.forward``)."""
    if name != "ntxent":
        return torch.arange(n) // 2
    b = n // world // 2
    return torch.cat([(torch.arange(b) + r * b).repeat(2) for r in range(world)])


def _rank(rank, world, port, x, y, out):
    import torch.distributed as dist

    torch.set_default_dtype(torch.float64)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        n = len(x) // world
        for name in NAMES:
            y = _labels(name)
            local = x[rank * n : (rank + 1) * n].clone().requires_grad_()
            loss = _make(name)(local, y[rank * n : (rank + 1) * n])
            loss.backward()
            out.put((name, rank, loss.item(), local.grad))
    finally:
        dist.destroy_process_group()


def test_two_process_gather_gives_the_one_process_loss_and_gradients():
    x, _ = inputs("random", n=16)
    x = x.detach()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, 2, port, x, None, out)) for r in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in range(2 * len(NAMES))]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for name in NAMES:
        full = x.clone().requires_grad_()
        loss = _make(name)(full, _labels(name))
        loss.backward()
        for _, rank, value, grad in (r for r in results if r[0] == name):
            assert value == pytest.approx(loss.item(), abs=1e-10), name
            assert torch.allclose(grad, full.grad[rank * 8 : (rank + 1) * 8], atol=1e-10), name
