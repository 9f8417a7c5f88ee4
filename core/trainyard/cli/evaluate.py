"""``trainyard test`` and ``trainyard val``: evaluate a checkpoint once, optionally writing the metrics as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trainyard.cli.arguments import add_run_options, config_from_arguments

__all__ = ["add_verbs"]


def add_verbs(commands: Any) -> None:
    for split in ("test", "val"):
        evaluate = commands.add_parser(split, help=f"evaluate a checkpoint on the {'test' if split == 'test' else 'validation'} set")
        evaluate.add_argument("config", help="config file")
        evaluate.add_argument("checkpoint", help="checkpoint file")
        evaluate.add_argument("--out", default=None, metavar="FILE", help="also write the metrics as JSON")
        evaluate.add_argument("--non-strict", action="store_true",
                              help="evaluate a checkpoint that lacks some of the model's keys (they keep their initial values)")
        add_run_options(evaluate)
        evaluate.set_defaults(handler=_evaluate, split=split)


def _evaluate(args: argparse.Namespace) -> int:
    """Load the checkpoint, run the loop once, optionally write the metrics."""
    cfg = config_from_arguments(args, args.split)
    from trainyard import dist
    from trainyard.runner import Runner

    try:
        runner = Runner.from_cfg(cfg)
        metrics = runner.test() if args.split == "test" else runner.val()
    except BaseException:
        dist.destroy()
        raise
    dist.destroy(synchronize=True)
    if args.out and runner.rank == 0:
        Path(args.out).write_text(json.dumps(metrics, indent=2) + "\n")
    return 0
