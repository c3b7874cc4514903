"""``tcn-robot evaluate``: measure encoders on held-out episodes the way the TCN paper does, plus
XIRL's alignment metrics and the quality of the reward each encoder would give, all in one table.

Given held-out sets filmed by other cameras (``--novel-data``: camera placements never trained on, a
hand-held camera), the embedding figures on each beside the in-distribution ones, with their ratios.

Writes ``OUT/metrics.json`` (every figure of every encoder), ``OUT/report.md`` (the tables) and,
per encoder, ``OUT/<encoder>/``: PCA trajectories, distance matrices (two views of one episode; the
demo against an episode), reward-over-time curves for good, partial and random episodes, and a
nearest-neighbour imitation video.
"""
from __future__ import annotations

import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from tqdm import tqdm

from .. import UserError, runs
from ..config import Config, save_config
from ..data.cache import FrameCache
from ..data.episodes import Dataset, choose_demo, load_demo, read_manifest, safe_name
from ..device import pick_device
from ..encoders import Encoder, baseline_encoder, checkpoint_encoder
from ..envs import ATTRIBUTES, PourConfig
from ..envs.behaviours import pour_side
from ..io import atomic_write_text, write_json
from ..reward import LEARNED, episode_rewards, episode_tcn_rewards
from . import plots
from .probes import PROBES, Probe, probe_ranking, run_probes
from .metrics import (alignment_error, alignment_tau, behaviour_retrieval, classification_error, cycle_consistency,
                      embodiment_alignment_error, kendall_tau, linear_probe_error, spearman, view_alignment_errors)


def _embed(enc: Encoder, frames: np.ndarray) -> np.ndarray:
    """(T, V, H, W, 3) -> (V, T, D), each view a video."""
    return np.stack([enc(np.ascontiguousarray(frames[:, v])) for v in range(frames.shape[1])])


def plot_folders(names: list[str]) -> list[str]:
    """A folder name for each encoder's plots: its name made safe (``safe_name``), unique, never empty."""
    folders: list[str] = []
    for k, name in enumerate(names):
        base = safe_name(name) or f"encoder{k}"
        folder, n = base, 1
        while folder in folders:
            n += 1
            folder = f"{base}-{n}"
        folders.append(folder)
    return folders


class Evaluation:
    """The held-out data, its ground truth and the demo, shared by every encoder."""

    def __init__(self, cfg: Config, data: str | Path, cache_dir: str | Path | None = None, demo: bool = True) -> None:
        """``demo=False``: the embedding figures only (``embedding_figures``), no demo and no probes."""
        self.cfg = cfg.evaluate
        self.reward = cfg.reward
        dataset = Dataset.open(data)
        self.cache = FrameCache(dataset, cache_dir=cache_dir, progress=False)
        self.world = dataset.manifest.get("settings", {}).get("env")  # the world the data was recorded in
        self.metas = [ep.meta for ep in self.cache.episodes]
        self.states = [ep.states() for ep in self.cache.episodes]
        self.labels = [self.cache.labels(i) for i in range(len(self.cache))]
        self.views = min(a.shape[1] for a in self.cache.arrays)
        self.fps = float(self.metas[0].get("fps", 20))
        if demo:
            self.demo_frames, self.demo_name = self._demo(cfg.evaluate.demo)
            self.probes, self.probes_missing = self._probes(cfg)

    def _probes(self, cfg: Config) -> tuple[list[Probe], str | None]:
        """The scripted probes in the demo's scene, in the world the held-out data was recorded in (its
        manifest's settings); none, with the reason, for a demo without states and scene seed."""
        path = Path(cfg.evaluate.demo or self.cache.dataset_root / self.demo_name)
        try:
            demo_world = read_manifest(path.parent).get("settings", {}).get("env")
        except UserError:  # a demo outside any dataset
            demo_world = None
        world = demo_world or self.world
        try:
            env = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(PourConfig), world)) if isinstance(world, dict) else cfg.env
        except Exception as e:  # a manifest whose world this tcn-robot cannot build
            return [], f"the demo's world cannot be rebuilt ({type(e).__name__})"
        try:
            return run_probes(env, path), None
        except UserError as e:
            return [], str(e)
    def _demo(self, path: str) -> tuple[np.ndarray, str]:
        """The demo's frames (T, V, H, W, 3) and name: the episode ``path``, or the data's own (``choose_demo``,
        its human-proxy views)."""
        if path:
            return load_demo(path), Path(path).name
        ep = choose_demo(self.cache.episodes, self.cache.dataset_root)
        i = self.cache.episodes.index(ep)
        human = [v for v, e in enumerate(ep.meta.get("view_embodiments", ["human"] * ep.num_views)) if e == "human"]
        return self.cache.arrays[i][:, human], ep.name

    def reference_frames(self, count: int = 2048) -> np.ndarray:
        """Up to ``count`` frames spread over every episode and view of the data (a baseline's statistics)."""
        every = [(i, t, v) for i, a in enumerate(self.cache.arrays) for t in range(a.shape[0]) for v in range(a.shape[1])]
        pick = np.random.default_rng(0).choice(len(every), min(count, len(every)), replace=False)
        return np.stack([self.cache.arrays[i][t, v] for i, t, v in (every[k] for k in sorted(pick))])

    def embedding_figures(self, enc: Encoder, agent: list[np.ndarray] | None = None) -> tuple[list[np.ndarray], dict]:
        """The embeddings (V, T, D) of every episode, and the figures of the embedding alone: alignment
        error, attribute classification, Kendall's tau and cycle consistency. ``agent``: each episode's
        agent-view embeddings (T, D) of the same scenes filmed by the training rig (``agent_view``), for
        the alignment error of every view of this set against them."""
        embs = [_embed(enc, a) for a in self.cache.arrays]
        m: dict = {}
        if self.views >= 2:
            by_view = np.mean([view_alignment_errors(e[: self.views]) for e in embs], 0)
            m["alignment_error"], m["alignment_error_by_view"] = float(by_view.mean()), by_view.tolist()
        m.update(self._agent_alignment(embs, agent))
        twins = [embodiment_alignment_error(e, mt["view_embodiments"]) for e, mt in zip(embs, self.metas) if "view_embodiments" in mt]
        if any(x is not None for x in twins):  # paired episodes: the human and the robot filmed at once
            m["embodiment_alignment_error"] = float(np.mean([x for x in twins if x is not None]))
        m.update(self._classification(embs))
        m.update(self._alignment_pairs(embs))
        return embs, m

    def run(self, enc: Encoder, folder: Path) -> tuple[dict, list[np.ndarray]]:
        """Every figure of ``enc``, and the embeddings (V, T, D) of every episode; its plots go into ``folder``."""
        embs, figures = self.embedding_figures(enc)
        demo = _embed(enc, self.demo_frames)
        names = [ep.name for ep in self.cache.episodes]
        m: dict = {"encoder": enc.name, **figures}
        m.update(self._reward_quality(embs, demo, names))
        m["reward_kinds"] = self._reward_kinds(enc, embs, demo, names)
        m["plots"] = self._plots(enc, embs, demo, names, folder)
        retrieval = self._behaviour_retrieval(embs)
        if retrieval:
            m["behaviour_retrieval"] = retrieval
            m["plots"]["behaviour_retrieval"] = f"{folder.name}/" + plots.confusion_matrix(
                retrieval["confusion"], retrieval["classes"], retrieval["classes"], folder / "behaviour_retrieval.png",
                f"{enc.name}: nearest episode by embedding", "episode's behaviour", "nearest episode's behaviour")
        return m, embs

    def same_scenes(self, other: "Evaluation") -> bool:
        """Whether ``other`` holds this set's episodes (names, frame counts, states) filmed by other cameras."""
        if [ep.name for ep in self.cache.episodes] != [ep.name for ep in other.cache.episodes]:
            return False
        return all(a is not None and b is not None and a["cup_position"].shape == b["cup_position"].shape
                   and np.array_equal(a["cup_position"], b["cup_position"]) for a, b in zip(self.states, other.states))

    def _agent_alignment(self, embs: list[np.ndarray], agent: list[np.ndarray] | None) -> dict:
        """``agent_alignment_error``: the alignment error of two views (``alignment_error``) between each view and
        the agent's view of the same scene, the pair a demo filmed by another camera and the robot's camera make
        (Sec. V-A's figure restricted to the agent's pairs). Without ``agent``: this set's other views against its
        own agent view; with it: every view of this set against the training rig's agent view."""
        if agent is None:
            if self.views < 2:
                return {}
            v0 = self.cfg.agent_view
            pairs = [(e[v0], e[v]) for e in embs for v in range(self.views) if v != v0]
        else:
            pairs = [(a, e[v]) for a, e in zip(agent, embs) for v in range(self.views)]
        return {"agent_alignment_error": float(np.mean([alignment_error(np.stack(p)) for p in pairs]))}

    # --------------------------------------------------------------- behaviours
    def _behaviour_retrieval(self, embs: list[np.ndarray]) -> dict:
        """In data of several pouring tasks (envs/behaviours.py): for each held-out demonstration that
        performed a behaviour, the behaviour of its nearest other such episode by the DTW distance of
        their agent-view embeddings, and how often that neighbour poured on the same side of the scene
        (the cup's y at its greatest tilt); {} when the data hold fewer than two behaviours."""
        idx = [i for i, m in enumerate(self.metas)
               if m.get("demonstrator") != "random" and m.get("behaviour_performed", "none") != "none"]
        performed = [self.metas[i]["behaviour_performed"] for i in idx]
        classes = sorted(set(performed))
        if len(classes) < 2:
            return {}
        agent = self.cfg.agent_view
        sides = [pour_side(self.states[i])[1] if {"cup_position", "tilt"} <= set(self.states[i] or {}) else None
                 for i in idx]
        return behaviour_retrieval([embs[i][agent] for i in idx], performed, classes,
                                   None if None in sides else sides)

    # --------------------------------------------------------------- attributes
    def _classification(self, embs: list[np.ndarray]) -> dict:
        idx = [i for i, lab in enumerate(self.labels) if lab is not None]
        if len(idx) < 2:
            return {}
        out = {}
        for setting in ("same_view", "cross_view") if self.views >= 2 else ("same_view",):
            errs = []
            for v in range(self.views):
                ref_views = [v] if setting == "same_view" else [w for w in range(self.views) if w != v]
                q = np.concatenate([embs[i][v] for i in idx])
                ql = np.concatenate([self.labels[i] for i in idx])
                qs = np.concatenate([np.full(len(self.labels[i]), i) for i in idx])
                r = np.concatenate([embs[i][w] for i in idx for w in ref_views])
                rl = np.concatenate([self.labels[i] for i in idx for _ in ref_views])
                rs = np.concatenate([np.full(len(self.labels[i]), i) for i in idx for _ in ref_views])
                errs.append(classification_error(q, ql, qs, r, rl, rs)["per_attribute"])
            per = np.mean(errs, axis=0)
            out[f"classification_error_{setting}"] = float(per.mean())
            out[f"classification_error_{setting}_per_attribute"] = dict(zip(ATTRIBUTES, map(float, per)))
        half = len(idx) // 2
        train, test = idx[:half], idx[half:]
        flat = lambda ids: (np.concatenate([embs[i][v] for i in ids for v in range(self.views)]),  # noqa: E731
                            np.concatenate([self.labels[i] for i in ids for _ in range(self.views)]))
        probe = linear_probe_error(*flat(train), *flat(test), steps=self.cfg.probe_steps)
        out["linear_probe_error"] = probe["mean"]
        out["linear_probe_error_per_attribute"] = dict(zip(ATTRIBUTES, probe["per_attribute"]))
        return out

    # --------------------------------------------------------------- temporal alignment
    def _alignment_pairs(self, embs: list[np.ndarray]) -> dict:
        done = [i for i, m in enumerate(self.metas) if m.get("is_success")]
        pairs = list(combinations(done, 2))[: self.cfg.max_pairs]
        if not pairs:
            return {}
        out = {}
        for setting, shift in (("same_view", 0), ("cross_view", 1)) if self.views >= 2 else (("same_view", 0),):
            taus, cycles = [], []
            for a, b in pairs:
                for v in range(self.views):
                    u, w = embs[a][v], embs[b][(v + shift) % self.views]
                    taus.append(alignment_tau(u, w))
                    cycles.append(cycle_consistency(u, w))
            out[f"kendall_tau_{setting}"] = float(np.mean(taus))
            out[f"cycle_consistency_{setting}"] = float(np.mean(cycles))
        out["alignment_pairs"] = len(pairs)
        return out

    # --------------------------------------------------------------- reward
    def _reward_quality(self, embs: list[np.ndarray], demo: np.ndarray, names: list[str]) -> dict:
        agent = self.cfg.agent_view
        idx = [i for i, s in enumerate(self.states) if s is not None and names[i] != self.demo_name]
        if len(idx) < 3:
            return {}
        out = {}
        for setting, demo_view in (("same_view", agent), ("cross_view", self.cfg.cross_demo_view % demo.shape[0])):
            if setting == "cross_view" and demo_view == agent:
                continue
            returns, finals, within = [], [], []
            for i in idx:
                r = episode_tcn_rewards(embs[i][agent], demo[demo_view], self.reward)
                poured = self.states[i]["fraction_in_bowl"]
                returns.append(r.mean())
                finals.append(poured[-1])
                within.append(spearman(r, poured))
            returns, finals = np.array(returns), np.array(finals)
            groups = self._groups(idx)
            by_group = {g: float(returns[sel].mean()) for g, sel in groups.items() if sel.any()}
            ranked = np.ptp(finals) > 0  # with one poured fraction for all there is nothing to rank against
            out[f"reward_{setting}"] = {
                "spearman_return_vs_poured": spearman(returns, finals) if ranked else None,
                "kendall_return_vs_poured": kendall_tau(returns, finals) if ranked else None,
                "spearman_within_episode": float(np.nanmean(within)),
                "mean_return": by_group,
                "success_above_failed_above_random": _ordered(by_group, ("successful", "failed", "random")),
            }
        return out

    def _reward_kinds(self, enc: Encoder, embs: list[np.ndarray], demo: np.ndarray, names: list[str]) -> dict:
        """Every learned reward against the demo (its agent view), without RL: the rank correlation of the
        held-out episodes' returns with the fraction they poured, and the returns of the scripted probes
        (``probes.py``): does every pour, at any pace, score above every non-pour?"""
        agent = self.cfg.agent_view
        idx = [i for i, s in enumerate(self.states) if s is not None and names[i] != self.demo_name]
        finals = np.array([self.states[i]["fraction_in_bowl"][-1] for i in idx])
        probe_embs = {p.name: enc(p.frames) for p in self.probes}
        out = {}
        for kind in LEARNED:
            returns = [float(episode_rewards(kind, embs[i][agent], demo[agent], self.reward).sum()) for i in idx]
            figures = {"spearman_return_vs_poured": spearman(returns, finals) if len(idx) >= 3 and np.ptp(finals) > 0 else None}
            if self.probes:
                figures.update(probe_ranking({name: float(episode_rewards(kind, e, demo[agent], self.reward).sum())
                                              for name, e in probe_embs.items()}))
            out[kind] = figures
        if not self.probes:
            out["probes_missing"] = self.probes_missing
        else:
            out["probe_fraction_in_bowl"] = {p.name: p.fraction_in_bowl for p in self.probes}
        return out

    def _groups(self, idx: list[int]) -> dict[str, np.ndarray]:
        """Demonstrations by outcome, random exploration (whatever it poured), and the successful
        demonstrations by embodiment (the gap a reward against a human video must bridge:
        successful robot pours should score near successful human ones)."""
        demo = np.array([self.metas[i].get("demonstrator") for i in idx])
        body = np.array([self.metas[i].get("embodiment") for i in idx])
        success = np.array([bool(self.metas[i].get("is_success")) for i in idx])
        scripted = demo != "random"
        return {"successful": success & scripted, "failed": ~success & scripted, "random": ~scripted,
                "successful_human": success & scripted & (body == "human"),
                "successful_robot": success & scripted & (body == "robot")}

    # --------------------------------------------------------------- figures
    def _plots(self, enc: Encoder, embs, demo, names, folder: Path) -> dict:
        agent = self.cfg.agent_view
        finals = [s["fraction_in_bowl"][-1] if s is not None else np.nan for s in self.states]
        pick = {
            "good": next((i for i, f in enumerate(finals) if f >= 0.8 and names[i] != self.demo_name), None),
            "partial": next((i for i, f in enumerate(finals) if 0.1 <= f < 0.8), None),
            "random": next((i for i, m in enumerate(self.metas) if m.get("demonstrator") == "random"), None),
        }
        files = {}
        ep = pick["good"] if pick["good"] is not None else 0
        files["pca"] = plots.pca_trajectories(embs[ep], folder / "pca_trajectories.png", f"{enc.name}: {names[ep]}, every view")
        if self.views >= 2:
            files["views_distance"] = plots.distance_matrix(embs[ep][0], embs[ep][1], folder / "distance_view0_view1.png",
                                                            f"{enc.name}: {names[ep]}", "view 1 frame", "view 0 frame")
        files["demo_distance"] = plots.distance_matrix(demo[0], embs[ep][agent], folder / "distance_demo_episode.png",
                                                       f"{enc.name}: demo vs {names[ep]}", f"{names[ep]} frame", "demo frame")
        curves = {f"{k} ({names[i]})": (episode_tcn_rewards(embs[i][agent], demo[0], self.reward), self.states[i]["fraction_in_bowl"])
                  for k, i in pick.items() if i is not None and self.states[i] is not None}
        if curves:
            files["reward_curves"] = plots.reward_curves(curves, folder / "reward_curves.png", f"{enc.name}: TCN reward against the demo")
        cross = min(1, demo.shape[0] - 1)
        nn_idx = np.sqrt(((embs[ep][agent][:, None] - demo[cross][None]) ** 2).sum(-1)).argmin(1)
        files["retrieval_video"] = plots.retrieval_video(self.cache.arrays[ep][:, agent], self.demo_frames[:, cross], nn_idx,
                                                         folder / "nearest_neighbour_imitation.mp4", self.fps)
        return {k: f"{folder.name}/{v}" for k, v in files.items()}


@runs.owns_outputs
def evaluate(cfg: Config, data: str | Path, out: str | Path, checkpoints: list[str], baselines: list[str],
             overwrite: bool = False, cache_dir: str | Path | None = None, novel: list[str] = ()) -> dict:
    """Evaluate every encoder on ``data`` into ``out``; returns ``{encoder: metrics}``. ``novel``: held-out
    sets filmed by other cameras (``[NAME=]DIR``), each encoder's embedding figures on each put beside
    the in-distribution ones (``metrics["novel"][NAME]``). Every input is read before ``out`` (new, or an
    earlier evaluation with ``overwrite``) is written."""
    if not checkpoints and not baselines:
        raise UserError("give at least one --checkpoint or --baseline")
    out = Path(out)
    novel = [(name or path.name, path) for name, path in map(runs.checkpoint_spec, novel)]
    if len({n for n, _ in novel}) < len(novel):
        raise UserError("two --novel-data sets have one name; name them with --novel-data NAME=DIR")
    mode = runs.check_output(out, "evaluate", overwrite=overwrite)
    runs.check_apart(out, {"--data": data, "--demo": cfg.evaluate.demo, **{f"--novel-data {n}": p for n, p in novel},
                           **{f"--checkpoint {c}": runs.checkpoint_spec(c)[1] for c in checkpoints}})
    device = pick_device(cfg.train.device)
    encoders = [checkpoint_encoder(c, device) for c in checkpoints]
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        ev = Evaluation(cfg, data, cache_dir)
        others = {n: Evaluation(cfg, p, None if cache_dir is None else Path(cache_dir) / f"novel-{k}", demo=False)
                  for k, (n, p) in enumerate(novel)}
    same = {n: ev.same_scenes(other) for n, other in others.items()}  # the agent-view pairs need the same scenes
    reference = ev.reference_frames() if "random-features" in baselines else None
    encoders += [baseline_encoder(b, cfg.model, cfg.train.seed, device, reference=reference) for b in baselines]
    names = [enc.name for enc in encoders]
    if len(set(names)) < len(names):
        raise UserError(f"two encoders are both named {next(n for n in names if names.count(n) > 1)!r}; name them with --checkpoint NAME=PATH")
    runs.claim_output(out, "evaluate", mode, inputs={"data": str(Path(data).resolve())})
    save_config(cfg, out)
    results = {}
    for enc, folder in tqdm(list(zip(encoders, plot_folders(names))), desc="evaluate", unit="encoder"):
        results[enc.name], embs = ev.run(enc, out / folder)
        if others:
            agent = [e[ev.cfg.agent_view] for e in embs]
            results[enc.name]["novel"] = {n: other.embedding_figures(enc, agent if same[n] else None)[1]
                                          for n, other in others.items()}
    write_json(out / runs.METRICS, {"data": str(Path(data).resolve()), "demo": ev.demo_name, "episodes": len(ev.cache),
                                      "encoders": results})
    atomic_write_text(out / runs.REPORT, report(results, ev, data))
    return results


NOVEL_FIGURES = (("alignment_error", True), ("agent_alignment_error", True), ("kendall_tau_same_view", False),
                 ("kendall_tau_cross_view", False),
                 ("classification_error_same_view", True), ("classification_error_cross_view", True))


def _f(x, pct: bool = True) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}" if pct else f"{x:.2f}"


def _g(x) -> str:
    """Three significant digits: returns differ in scale by reward kind (progress sums to about 0.1)."""
    return "-" if x is None else f"{x:.3g}"


def _ordered(values: dict[str, float], order: tuple[str, ...]) -> bool | None:
    """Whether the groups of ``order`` present in ``values`` are strictly decreasing in that order;
    None when fewer than two are present (nothing to compare)."""
    present = [values[g] for g in order if g in values]
    return all(a > b for a, b in zip(present, present[1:])) if len(present) > 1 else None


def _yes_no(x: bool | None) -> str:
    return "n/a" if x is None else ("yes" if x else "no")


def report(results: dict, ev: Evaluation, data) -> str:
    rows = [
        "| encoder | alignment error % | human / robot alignment error % (paired episodes) | classification error % (same view) | (cross view) | linear probe error % "
        "| Kendall tau (same / cross) | cycle consistency (same / cross) | reward Spearman (same / cross demo view) "
        "| mean reward: human / robot / random pours | successful > failed demos > random (groups present) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for name, m in results.items():
        rs, rc = m.get("reward_same_view", {}), m.get("reward_cross_view", {})
        rows.append(
            f"| {name} | {_f(m.get('alignment_error'))} | {_f(m.get('embodiment_alignment_error'))} "
            f"| {_f(m.get('classification_error_same_view'))} "
            f"| {_f(m.get('classification_error_cross_view'))} | {_f(m.get('linear_probe_error'))} "
            f"| {_f(m.get('kendall_tau_same_view'), False)} / {_f(m.get('kendall_tau_cross_view'), False)} "
            f"| {_f(m.get('cycle_consistency_same_view'), False)} / {_f(m.get('cycle_consistency_cross_view'), False)} "
            f"| {_f(rs.get('spearman_return_vs_poured'), False)} / {_f(rc.get('spearman_return_vs_poured'), False)} "
            f"| {' / '.join(_f(rs.get('mean_return', {}).get(g), False) for g in ('successful_human', 'successful_robot', 'random'))} "
            f"| {_yes_no(rs.get('success_above_failed_above_random'))} |")
    per = ["| encoder | " + " | ".join(ATTRIBUTES) + " |", "| --- |" + " ---: |" * len(ATTRIBUTES)]
    for name, m in results.items():
        p = m.get("classification_error_same_view_per_attribute", {})
        per.append(f"| {name} | " + " | ".join(_f(p.get(a)) for a in ATTRIBUTES) + " |")
    kinds = ["| encoder | reward | Spearman of return vs poured | every pour above every non-pour | margin | "
             + " | ".join(PROBES) + " |", "| --- | --- | ---: | :---: | ---: |" + " ---: |" * len(PROBES)]
    for name, m in results.items():
        for kind in LEARNED:
            k = m["reward_kinds"][kind]
            returns = k.get("probe_returns", {})
            kinds.append(f"| {name} | {kind} | {_f(k['spearman_return_vs_poured'], False)} | {_yes_no(k.get('pours_above_others'))} "
                         f"| {_f(k.get('margin'), False)} | " + " | ".join(_g(returns.get(p)) for p in PROBES) + " |")
    first = next(iter(results.values()))["reward_kinds"]
    probes_note = (f"The probes could not run: {first['probes_missing']}." if "probes_missing" in first else
                   "Fraction in the bowl of each probe: " + ", ".join(f"{p} {v:.2f}" for p, v in first["probe_fraction_in_bowl"].items()) + ".")
    retrieval = []
    for name, m in results.items():
        r = m.get("behaviour_retrieval")
        if r:
            cells = "; ".join(f"{c}: " + ", ".join(f"{c2} {n}" for c2, n in zip(r["classes"], row) if n)
                              for c, row in zip(r["classes"], r["confusion"]))
            retrieval.append(f"| {name} | {_f(r['accuracy'])} | {_f(r.get('same_place'))} | {r['episodes']} | {cells} |")
    if retrieval:
        retrieval = ["## Behaviour retrieval", "",
                     "Each held-out demonstration that performed a behaviour, and the behaviour of its nearest other one by "
                     "the dynamic-time-warping distance of their agent-view embeddings (no behaviour labels in training). "
                     "Same side: how often that neighbour poured on the same side of the scene; the receptacles' sides are "
                     "drawn apart from the behaviour, so the side of a pour does not tell its behaviour.", "",
                     "| encoder | correct % | same side % | episodes | behaviour: nearest episodes' behaviours |",
                     "| --- | ---: | ---: | ---: | --- |",
                     *retrieval, ""]
    novel = []
    for name, m in results.items():
        for set_name, n in m.get("novel", {}).items():
            cells = []
            for key, pct in NOVEL_FIGURES:
                a, b = m.get(key), n.get(key)
                ratio = f" ({b / a:.2f}x)" if a and b is not None else ""
                cells.append(f"{_f(a, pct)} / {_f(b, pct)}{ratio}")
            novel.append(f"| {name} | {set_name} | " + " | ".join(cells) + " |")
    by_camera = [f"| {name} | {set_name} | " + " / ".join(_f(x) for x in figures["alignment_error_by_view"]) + " |"
                 for name, m in results.items() if "novel" in m
                 for set_name, figures in [("held-out data", m), *m["novel"].items()] if "alignment_error_by_view" in figures]
    if novel:
        novel = ["## Cameras never trained on", "",
                 "Each figure on the held-out data above / on each set filmed by other cameras (its ratio to the first). "
                 "agent_alignment_error: each view against the agent's view of the same scene (above: the rig's other "
                 "views; a set of the same scenes: each of its views against the rig's agent view, else against its own "
                 "agent view), the pair a demo from another camera makes with the robot's.", "",
                 "| encoder | set | " + " | ".join(k for k, _ in NOVEL_FIGURES) + " |",
                 "| --- | --- |" + " ---: |" * len(NOVEL_FIGURES), *novel, "",
                 "Alignment error by camera, %: each view's frames against every other view of its set (their mean is "
                 "alignment_error), in view order: which camera the embedding fails on.", "",
                 "| encoder | set | view 0 / view 1 / ... |", "| --- | --- | --- |", *by_camera, ""]
    figs = []
    for name, m in results.items():
        links = " · ".join(f"[{k}]({v})" for k, v in m["plots"].items())
        figs.append(f"- **{name}**: {links}")
    return "\n".join([
        "# Embedding evaluation", "",
        f"Held-out data: `{data}` ({len(ev.cache)} episodes, {ev.views} views); demo for the reward: `{ev.demo_name}`.", "",
        "Alignment error: mean |t - t_nn| / T between views of an episode (lower is better); human / robot: the same "
        "between the human-proxy and the robot views of one camera in paired (twin) episodes, - without them. Classification error: "
        "1 - class-averaged recall@1 of the five attributes, neighbours from other episodes, classes never retrieved "
        "count as misses (lower is better). Kendall tau and cycle consistency over pairs of successful episodes "
        "(higher is better). Reward Spearman: rank correlation of an episode's mean TCN reward against the "
        "demo with the fraction finally poured; mean reward per step of successful human-proxy pours, successful "
        "robot pours and random exploration (the agent view against the demo).", "",
        *rows, "", "Classification error per attribute (same view, %):", "", *per, "",
        "## Every learned reward without RL", "",
        "Spearman: the held-out episodes' returns (agent view against the demo) against the fraction each poured. "
        "Probes: the robot replays the demo's cup path in the demo's scene at its pace, 0.7x and 1.4x as fast and "
        "started at once (pours), and carries the cup upright along it, pours past the bowl, spills short of it "
        "or stands still; their returns, and whether every pour scores above every other probe (margin: lowest "
        "pour minus highest other, over the spread of all returns).", "", *kinds, "", probes_note, "",
        *retrieval, *novel, "Figures:", "", *figs, "",
    ])
