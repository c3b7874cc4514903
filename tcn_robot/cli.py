"""The ``tcn-robot`` command: one subcommand per stage, each thin (parse, load config, call the stage).

Every stage takes ``--config FILE`` (default: the packaged quickstart) and trailing ``key=value``
overrides of any config key. Errors a user can fix print one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import UserError, __version__
from .config import load_config


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="YAML config (default: the packaged quickstart.yaml)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. env.num_particles=30")


def _pipeline(args: argparse.Namespace) -> None:
    from .pipeline import run_pipeline

    run_pipeline(load_config(args.config, args.overrides), args.out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcn-robot",
        description="Time-Contrastive Networks for robot imitation: record multi-view pouring demos, "
        "train the embedding, train a policy against the learned reward.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    p = sub.add_parser("pipeline", help="run every stage end to end on one config", description=_pipeline_doc())
    p.add_argument("--out", type=Path, required=True, help="output folder")
    _add_common(p)
    p.set_defaults(func=_pipeline)
    return parser


def _pipeline_doc() -> str:
    from .pipeline import __doc__ as doc

    return doc.strip().splitlines()[0]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as e:
        print(f"tcn-robot {args.stage}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tcn-robot {args.stage}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
