"""The ``tcn-robot`` command: one subcommand per stage, each thin (parse, load config, call the stage).

Every stage takes ``--config FILE`` (default: the packaged quickstart) and ``key=value`` overrides
of any config key, anywhere among the flags (later ones win). Errors a user can fix print one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import functools
import signal
import sys
import threading
import warnings
from pathlib import Path

from . import EMBODIMENTS, HELDOUT_SEED, UserError
from .processes import forget_interrupts, interrupt

# Only what building the parser needs is imported here, so that ``--help`` and a bad command answer at
# once; each stage imports its own modules (torch, pybullet, stable-baselines3) when it runs.


def _add_overwrite(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace the {what} already in --out (made by this same command)")


def _add_accept_changed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accept-changed-inputs", action="store_true",
                   help="use the run's encoder and demo as they are now, although they changed since the run started")


def _add_cache_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="where decoded frames are cached (default: DATA/.cache, or the user's cache when DATA is read-only)")


def _add_training(p: argparse.ArgumentParser) -> None:
    """The flags that train-tcn and pretrain share."""
    p.add_argument("--data", type=Path, required=True, help="dataset folder (tcn-robot record or import-videos)")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--steps", type=int, help="train.steps")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="train.device")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from checkpoints/last.pt, with its saved config (only train.steps and intervals may change)")
    _add_overwrite(p, "run")
    _add_cache_dir(p)
    _add_common(p)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None,
                   help="YAML config, or the name of a packaged one: quickstart (the default), "
                        + ", ".join(n for n in _packaged_configs() if n != "quickstart"))
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. env.num_particles=30")
    p.set_defaults(accepts_overrides=True)


@functools.cache
def _packaged_configs() -> tuple[str, ...]:
    """Names of the YAML configs shipped in ``tcn_robot.configs``, listed once for every subcommand's help
    (read without importing the config schema)."""
    from importlib import resources

    return tuple(sorted(f.name[:-5] for f in resources.files("tcn_robot.configs").iterdir() if f.name.endswith(".yaml")))


def _config(args: argparse.Namespace, flags: dict[str, str] | None = None, resumes: Path | None = None):
    """The stage's config: ``--config`` (or the packaged default), then the ``key=value`` overrides that
    the given flags stand for (``flags``: attribute -> config key), then the trailing overrides. When
    the stage continues the run folder ``resumes``, the run's saved config takes the packaged
    default's place, so that only what the command line sets differs from it."""
    from .config import load_config

    given = [f"{key}={getattr(args, attr)}" for attr, key in (flags or {}).items() if getattr(args, attr) is not None]
    base = resumes / "config.yaml" if resumes is not None and (resumes / "config.yaml").is_file() else None
    return load_config(args.config, given + list(args.overrides), base=base)


def _precheck(args: argparse.Namespace, kind: str | None = None, data: tuple = (), files: tuple = (), folders: tuple = ()) -> None:
    """Checks that need no heavy import, so that a mistyped path fails at once, before the stage
    imports torch or pybullet: ``--out`` may be written by the command ``kind``, each dataset folder
    has its manifest, each file and folder exists (``files`` and ``folders``: ``(flag, path)`` pairs).
    The stage checks everything again, in depth."""
    from . import runs
    from .data.episodes import read_manifest

    if kind is not None:
        runs.check_output(args.out, kind, getattr(args, "resume", False), getattr(args, "overwrite", False))
    for d in data:
        if not Path(d).is_dir():
            raise UserError(f"{d}: no such dataset folder")
        read_manifest(Path(d))
    for flag, f in files:
        if not Path(f).is_file():
            raise UserError(f"{flag} {f}: not found")
    for flag, d in folders:
        if not Path(d).is_dir():
            raise UserError(f"{flag} {d}: no such folder")


def _resumed(args: argparse.Namespace) -> Path | None:
    """The run folder ``--out`` when this command continues it (``--resume``, or a pipeline run again)."""
    if getattr(args, "overwrite", False):
        return None
    return args.out if getattr(args, "resume", False) or args.stage == "pipeline" else None


def _pipeline(args: argparse.Namespace) -> None:
    if args.seed is not None:  # one seed for the whole chain: --seed 0 is the packaged default
        args.overrides = [f"{key}={args.seed}" for key in ("pipeline.seed", "record.seed", "train.seed", "rl.seed")] + [
            f"record.heldout_seed={HELDOUT_SEED + args.seed}", *args.overrides]
    cfg = _config(args, resumes=_resumed(args))
    _precheck(args, "pipeline")
    from .pipeline import run_pipeline

    run_pipeline(cfg, args.out, overwrite=args.overwrite)


def _record(args: argparse.Namespace) -> None:
    held = "heldout_" if args.heldout else ""  # --heldout: the flags set the held-out set's keys
    cfg = _config(args, {"episodes": f"record.{held}episodes", "views": "record.views", "image_size": "record.image_size",
                         "seed": f"record.{held}seed", "demonstrator": f"record.{held}demonstrators", "workers": "record.workers"})
    _precheck(args, "record")
    from .data.record import record_dataset

    r = cfg.record
    episodes, seed, mix = ((r.heldout_episodes, r.heldout_seed, r.heldout_demonstrators or r.demonstrators) if args.heldout
                           else (r.episodes, r.seed, r.demonstrators))
    s = record_dataset(cfg.env, args.out, episodes, r.views, r.image_size, seed, mix, args.shard, r.workers,
                       overwrite=args.overwrite, config=cfg, behaviours=r.behaviours)
    rates = ", ".join(f"{k} {v:.0%}" for k, v in sorted(s["success_rate"].items()))
    print(f"record: {s['episodes']} episodes in {args.out} ({s['recorded_now']} now, {s['frames_recorded_now']} frames, "
          f"{s['frames_per_second']:.0f} frames/s, {s['bytes_written'] / 1e6:.1f} MB); demonstrators "
          f"{dict(sorted(s['demonstrators'].items()))}; success {rates}"
          + (f"; behaviours {dict(sorted(s['behaviours'].items()))}" if "behaviours" in s else ""))


def _import_videos(args: argparse.Namespace) -> None:
    _precheck(args, "import-videos", folders=(("SRC", args.src),))
    from .data.importer import import_videos

    s = import_videos(args.src, args.out, args.image_size, args.trim, args.strict, overwrite=args.overwrite,
                      embodiment=args.embodiment)
    for seq, name in s["renamed"].items():
        print(f"import-videos: sequence {seq!r} imported as episode {name!r}")
    print(f"import-videos: {s['imported']} sequences imported into {args.out}, {s['already_present']} already there, "
          f"{s['skipped_bad']} skipped as bad")


def _inspect(args: argparse.Namespace) -> int:
    import json

    from .data.inspect import format_summary, inspect_dataset

    s = inspect_dataset(args.dataset, decode=args.decode)
    print(json.dumps(s, indent=2) if args.json else format_summary(s))
    return 1 if args.strict and (s["bad_episodes"] or s["problems"]) else 0


def _train_tcn(args: argparse.Namespace) -> None:
    cfg = _config(args, {"mode": "tcn.mode", "loss": "tcn.loss", "steps": "train.steps", "device": "train.device"}, _resumed(args))
    _precheck(args, "train-tcn", data=(args.data,))
    from .train.tcn import train_tcn

    m = train_tcn(cfg, args.data, args.out, resume=args.resume, overwrite=args.overwrite, cache_dir=args.cache_dir)
    val = f", validation alignment error {m['val']['alignment_error']:.3f} (best {m['best_val']:.3f})" if m.get("val") else ""
    print(f"train-tcn: {m['steps']} steps, loss {m['train_loss_first']:.4f} -> {m['train_loss_final']:.4f}{val}, "
          f"{m['frames_per_second']:.0f} frames/s on {m['device']}; wrote {args.out}")


def _pretrain(args: argparse.Namespace) -> None:
    cfg = _config(args, {"method": "train.method", "steps": "train.steps", "device": "train.device"}, _resumed(args))
    _precheck(args, "pretrain", data=(args.data,))
    from .train.run import train

    m = train(cfg, args.data, args.out, "pretrain", resume=args.resume, overwrite=args.overwrite, cache_dir=args.cache_dir)
    val = ", ".join(f"{k} {v:.3f}" for k, v in (m.get("val") or {}).items() if k != "step")
    print(f"pretrain ({m['method']}): {m['steps']} steps, loss {m['train_loss_first']:.4f} -> {m['train_loss_final']:.4f}"
          f"{', validation ' + val if val else ''}, {m['frames_per_second']:.0f} frames/s on {m['device']}; wrote {args.out}")


def _evaluate(args: argparse.Namespace) -> None:
    args.overrides = (["evaluate.demo=" + str(args.demo)] if args.demo else []) + list(args.overrides)
    cfg = _config(args)
    from .runs import checkpoint_spec

    _precheck(args, "evaluate", data=(args.data, *(checkpoint_spec(s)[1] for s in args.novel_data)),
              files=tuple(("--checkpoint", checkpoint_spec(c)[1]) for c in args.checkpoint),
              folders=(("--demo", args.demo),) if args.demo else ())
    from .evaluate.run import evaluate

    results = evaluate(cfg, args.data, args.out, args.checkpoint, args.baseline, overwrite=args.overwrite, cache_dir=args.cache_dir,
                       novel=args.novel_data)
    for name, m in results.items():
        print(f"evaluate: {name}: alignment error {m.get('alignment_error', float('nan')):.3f}, classification error "
              f"{m.get('classification_error_same_view', float('nan')):.3f} (same view)")
    print(f"evaluate: wrote {args.out / 'report.md'}")


def _embed(args: argparse.Namespace) -> None:
    _precheck(args, data=(args.data,), files=(("--checkpoint", args.checkpoint),))
    from .train.embed import embed_dataset

    n = embed_dataset(args.checkpoint, args.data, args.out, device=args.device, overwrite=args.overwrite, cache_dir=args.cache_dir)
    print(f"embed: {n} episodes -> {args.out}")


def _train_rl(args: argparse.Namespace) -> None:
    cfg = _config(args, {"algo": "rl.algo", "reward": "rl.reward", "steps": "rl.steps", "n_envs": "rl.n_envs", "seed": "rl.seed",
                         "encoder": "rl.encoder", "observe_encoder": "rl.observe_encoder", "demo": "rl.demo",
                         "demo_view": "rl.demo_view"}, _resumed(args))
    learned = cfg.rl.reward != "env"
    from .methods import BASELINES

    encoders = (("--encoder", cfg.rl.encoder), ("--observe-encoder", cfg.rl.observe_encoder))
    _precheck(args, "train-rl", files=tuple((k, f) for k, f in encoders if learned and f and f not in BASELINES),
              folders=(("--demo", cfg.rl.demo),) if learned and cfg.rl.demo else ())
    from .rl import train_rl

    metrics = train_rl(cfg, args.out, resume=args.resume, overwrite=args.overwrite, accept_changed=args.accept_changed_inputs)
    final = metrics["final_eval"]
    print(
        f"train-rl: {metrics['steps']} steps, fraction in bowl {final['fraction_in_bowl_mean']:.3f} "
        f"(std {final['fraction_in_bowl_std']:.3f}), success rate {final['success_rate']:.2f}; wrote {args.out / 'metrics.json'}"
    )


def _replay(args: argparse.Namespace) -> None:
    _precheck(args, "replay", folders=(("--run", args.run),))
    from .replay import replay

    m = replay(args.run, args.episodes, args.out, policy=args.policy, overwrite=args.overwrite, accept_changed=args.accept_changed_inputs)
    print(f"replay: {len(m['episodes'])} episodes of the {args.policy} policy, fraction in bowl {m['fraction_in_bowl_mean']:.3f} "
          f"(std {m['fraction_in_bowl_std']:.3f}), success rate {m['success_rate']:.2f}; wrote {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcn-robot",
        description="Time-Contrastive Networks for robot imitation: record multi-view pouring demos, "
        "train the embedding, train a policy against the learned reward.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    p = sub.add_parser("pipeline", help="run every stage end to end on one config",
                       description="Run every stage end to end: record -> train-tcn -> evaluate -> train-rl -> replay. "
                       "Re-running the same command resumes.")
    p.add_argument("--out", type=Path, required=True, help="output folder (run again to resume)")
    p.add_argument("--seed", type=int, default=None,
                   help=f"seed of every stage: the recordings (held-out ones: {HELDOUT_SEED} + SEED), the demo video, the TCN and the policy")
    _add_overwrite(p, "pipeline run")
    _add_common(p)
    p.set_defaults(func=_pipeline)

    p = sub.add_parser("record", help="record multi-view demonstration episodes",
                       description="Record multi-view episodes of the scripted demonstrators; re-running the same command resumes it.")
    p.add_argument("--out", type=Path, required=True, help="dataset folder")
    p.add_argument("--episodes", type=int, help="record.episodes")
    p.add_argument("--views", type=int, help="record.views: cameras per episode")
    p.add_argument("--image-size", type=int, help="record.image_size (pixels, square)")
    p.add_argument("--seed", type=int, help="record.seed")
    p.add_argument("--demonstrator", metavar="MIX", help="record.demonstrators, e.g. human=0.5,robot=0.25,random=0.25")
    p.add_argument("--workers", type=int, help="record.workers: parallel processes")
    p.add_argument("--shard", default="0/1", metavar="i/N", help="record only the i-th of N disjoint parts")
    p.add_argument("--heldout", action="store_true",
                   help="record the config's held-out set (record.heldout_episodes, heldout_seed, heldout_demonstrators)")
    _add_overwrite(p, "recording")
    _add_common(p)
    p.set_defaults(func=_record)

    p = sub.add_parser("import-videos", help="turn {sequence}_view{k}.mp4 videos into a dataset",
                       description="Import synchronized videos named {sequence}_view{k}.mp4 (or .mov) into the episode format.")
    p.add_argument("src", type=Path, help="folder of videos")
    p.add_argument("--out", type=Path, required=True, help="dataset folder")
    p.add_argument("--image-size", type=int, default=None, help="centre-crop to a square and resize to this size")
    p.add_argument("--trim", action="store_true", help="cut the views of a sequence to the shortest")
    p.add_argument("--strict", action="store_true", help="fail on the first bad sequence instead of skipping it")
    p.add_argument("--embodiment", choices=EMBODIMENTS, default="unknown",
                   help="who does the task in these videos (human and robot demonstrations are what tcn.align_weight aligns; "
                        "import each folder with its own)")
    _add_overwrite(p, "imported dataset")
    p.set_defaults(func=_import_videos, overrides=[])

    p = sub.add_parser("inspect", help="summarize a dataset and list bad episodes",
                       description="Summarize a dataset: episodes, views, frames, demonstrators, success, bad episodes and why.")
    p.add_argument("dataset", type=Path)
    p.add_argument("--strict", action="store_true", help="exit 1 when any episode is bad or the dataset cannot train (mixed image sizes, single views)")
    p.add_argument("--decode", action="store_true", help="also decode every frame (slow; finds damage the headers hide)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_inspect, overrides=[])

    p = sub.add_parser("train-tcn", help="train a TCN embedding on a recorded dataset",
                       description="Train a Time-Contrastive Network on multi-view episodes; works under torchrun for DDP.")
    p.add_argument("--mode", choices=["multiview", "singleview"], help="tcn.mode")
    p.add_argument("--loss", choices=["triplet", "npairs", "infonce", "lifted"], help="tcn.loss")
    _add_training(p)
    p.set_defaults(func=_train_tcn)

    from .methods import METHODS

    pretext = {name: spec for name, spec in METHODS.items() if name != "tcn"}
    p = sub.add_parser("pretrain", help="train the embedding with an image pretext method (the TCN paper's rivals)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train the same network as train-tcn with a self-supervised pretext method; settings in "
                       "the config section of the method's name.\n\n" + "\n".join(f"  {n:<14}{s.summary}" for n, s in pretext.items()))
    p.add_argument("--method", required=True, choices=list(pretext), help="train.method")
    _add_training(p)
    p.set_defaults(func=_pretrain)

    p = sub.add_parser("evaluate", help="measure encoders on held-out episodes (TCN paper metrics) in one table",
                       description="Alignment error, attribute classification error, linear probe, Kendall's tau, cycle "
                       "consistency and reward quality of checkpoints and baselines on held-out episodes.")
    p.add_argument("--checkpoint", action="append", default=[], metavar="[NAME=]PATH", help="a trained checkpoint (repeatable)")
    from .methods import BASELINES

    p.add_argument("--baseline", action="append", default=[], choices=BASELINES,
                   help="an untrained baseline (repeatable): random init (degenerate: nearly one vector for every frame), "
                        "random-features (the untrained trunk's pooled features, standardized), pixels")
    p.add_argument("--data", type=Path, required=True, help="held-out dataset folder")
    p.add_argument("--novel-data", action="append", default=[], metavar="[NAME=]DIR",
                   help="a held-out set filmed by other cameras (e.g. record --config novel_rig --heldout): the embedding "
                        "figures on it beside those on --data, with their ratios (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument("--demo", type=Path, default=None, help="human-proxy demo episode for the reward reading (evaluate.demo)")
    _add_overwrite(p, "evaluation")
    _add_cache_dir(p)
    _add_common(p)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("embed", help="write per-episode, per-view embeddings of a dataset",
                       description="Embed every frame of every view of a dataset with a checkpoint; writes an npz of (V, T, D) arrays keyed by episode.")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="output .npz file")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    _add_overwrite(p, ".npz file")
    _add_cache_dir(p)
    p.set_defaults(func=_embed, overrides=[])

    p = sub.add_parser("train-rl", help="train a policy (stable-baselines3) on the pouring task",
                       description="Train a stable-baselines3 policy on the pouring task; flags override rl.* config keys.")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--algo", choices=["ppo", "sac"], default=None, help="rl.algo")
    p.add_argument("--reward", choices=["env", "tcn", "goal", "orca", "progress"], default=None,
                   help="rl.reward: env (ground truth), tcn (the paper's time-indexed TCN reward), goal (XIRL's goal distance), "
                        "orca (ORCA's ordered coverage of the demo), progress (how far through the demo, in order, at any pace)")
    p.add_argument("--encoder", default=None, metavar="CHECKPOINT|random|random-features|pixels", help="rl.encoder for learned rewards")
    p.add_argument("--observe-encoder", default=None, metavar="CHECKPOINT|random|random-features|pixels",
                   help="rl.observe_encoder: the encoder whose embeddings rl.append_embedding adds to the observation "
                        "(default: --encoder)")
    p.add_argument("--demo", default=None, metavar="EPISODE_DIR", help="rl.demo: the demonstration episode")
    p.add_argument("--demo-view", type=int, default=None, help="rl.demo_view: the demo's camera")
    p.add_argument("--steps", type=int, default=None, help="rl.steps: environment steps in all")
    p.add_argument("--n-envs", type=int, default=None, help="rl.n_envs: parallel environments (subprocesses)")
    p.add_argument("--seed", type=int, default=None, help="rl.seed")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint, with its saved config (only rl.steps and evaluation settings may change)")
    _add_accept_changed(p)
    _add_overwrite(p, "run")
    _add_common(p)
    p.set_defaults(func=_train_rl)

    p = sub.add_parser("replay", help="roll out a trained policy: videos beside the demo, reward plots",
                       description="Run a train-rl policy; write each episode's camera views beside the demo video, "
                       "a plot of its learned reward and the fraction poured, and metrics.json.")
    p.add_argument("--run", type=Path, required=True, help="a train-rl run folder")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--policy", choices=["trained", "random"], default="trained")
    _add_accept_changed(p)
    _add_overwrite(p, "replay")
    p.set_defaults(func=_replay, overrides=[])
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The stage's arguments; ``key=value`` overrides may also follow or sit between flags (argparse
    takes one run of positionals only), where they keep their command-line order."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not getattr(args, "accepts_overrides", False) or any(a.startswith("-") or "=" not in a for a in extra):
            parser.parse_args(argv)  # exits with argparse's message for what it did not recognize
        args.overrides = list(args.overrides) + extra
    return args


def main(argv: list[str] | None = None) -> int:
    """Run one stage. A problem the user can fix (bad input, an unwritable folder, a full disk, too
    little memory) prints one line and returns 2; a warning is one line too; Ctrl-C or SIGTERM prints
    one line and returns 130 (long stages checkpoint first)."""
    stage = "tcn-robot"
    forget_interrupts()
    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    showwarning, excepthook = warnings.showwarning, threading.excepthook
    out = None
    try:
        args = parse(argv)
        stage, out = f"tcn-robot {args.stage}", getattr(args, "out", None)
        warnings.showwarning = lambda message, *rest, **kw: print(f"{stage}: warning: {message}", file=sys.stderr)
        # a helper thread (TensorBoard's event writer) that meets a full disk: the main thread reports it on its next write
        threading.excepthook = lambda hook: None if issubclass(hook.exc_type, OSError) else excepthook(hook)
        return args.func(args) or 0
    except UserError as e:
        print(f"{stage}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the system refused (disk full, read-only, permission, too many open files)
        from .io import describe_os_error

        if not e.filename and out is not None:  # a library that did not say which file: the command's output
            e.filename = str(out)
        print(f"{stage}: error: {describe_os_error(e)}", file=sys.stderr)
        return 2
    except (EOFError, BrokenPipeError, ConnectionResetError):  # a worker process (an environment) vanished
        print(f"{stage}: error: a worker process died (killed, or out of memory or open files); "
              "run the command again to resume", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{stage}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if _interrupted(e):
            print(f"{stage}: interrupted", file=sys.stderr)
            return 130
        need = _out_of_memory(e)
        if need is not None:
            print(f"{stage}: error: out of memory{need}; free memory, or lower the batch, image size or number of workers",
                  file=sys.stderr)
            return 2
        raise
    finally:
        warnings.showwarning, threading.excepthook = showwarning, excepthook
        for s, handler in previous.items():
            signal.signal(s, handler)


def _out_of_memory(e: BaseException) -> str | None:
    """When ``e`` is an allocation that failed, what it needed (" (it needed 281 MB)", or ""); else None.
    torch reports one as a RuntimeError of its own, and a library that cannot be mapped as an ImportError."""
    import re

    text = str(e)
    if not (isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower()))
            or (isinstance(e, ImportError) and "failed to map segment" in text)):
        return None
    found = re.search(r"allocate (\d+) bytes", text) or re.search(r"allocate ([\d.]+ [KMGT]i?B)", text)
    if found is None:
        return ""
    size = found.group(1)
    return f" (it needed {int(size) / 2**20:.0f} MB more)" if size.isdigit() else f" (it needed {size} more)"


def _interrupted(e: BaseException | None) -> bool:
    """Whether ``e`` was caused by Ctrl-C: Python wraps a KeyboardInterrupt that lands inside some of
    its own machinery (e.g. a class body's ``__set_name__`` while torch is being imported) in a RuntimeError."""
    while e is not None:
        if isinstance(e, KeyboardInterrupt):
            return True
        e = e.__cause__ or e.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())
