"""``trainyard train CONFIG``: build a Runner from the config and train; print how to continue when interrupted."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from trainyard.cli.arguments import add_run_options, config_from_arguments

__all__ = ["add_verbs", "resume_command"]


def add_verbs(commands: Any) -> None:
    train = commands.add_parser("train", help="train a model from a config")
    train.add_argument("config", help="config file")
    train.add_argument("--resume", nargs="?", const="auto", default=None, metavar="auto|PATH",
                       help="resume from PATH, or with no value from the work dir's last_checkpoint")
    train.add_argument("--overwrite", action="store_true",
                       help="start a new run in a work dir that holds an earlier run's checkpoints, deleting them")
    train.add_argument("--load-from", default=None, metavar="PATH", help="initial weights (no optimizer state)")
    train.add_argument("--amp", action="store_true", help="mixed precision: float16 on CUDA, bfloat16 on the CPU")
    train.add_argument("--auto-scale-lr", action="store_true",
                       help="scale the lr by the total batch (batch size x processes x accumulation) over the config's "
                            "auto_scale_lr.base_batch_size")
    train.add_argument("--seed", type=int, default=None, help="random seed (default: the config's, else drawn and logged)")
    train.add_argument("--deterministic", action="store_true", help="use deterministic algorithms")
    add_run_options(train)
    train.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    cfg = config_from_arguments(args, "train")
    from trainyard import dist
    from trainyard.interrupts import TrainingInterrupted
    from trainyard.runner import Runner

    try:
        Runner.from_cfg(cfg).train()
    except TrainingInterrupted:
        dist.destroy(synchronize=True)  # every rank stopped after the same iteration
        raise
    except BaseException:
        dist.destroy()
        raise
    dist.destroy(synchronize=True)
    return 0


def resume_command(args: argparse.Namespace, work_dir: Path, saved: bool = True) -> str:
    """The command that continues an interrupted run: the same one, in the work dir it used, with ``--resume``.

    Options that change how training runs (seed, AMP, launcher, determinism, config
    overrides, initial weights) are kept; ``--overwrite`` is not. Once the run ``saved``
    a checkpoint it continues from its own newest one; before that, from where it
    started (the same ``--resume PATH``, else ``--load-from``, which a resume overrides).
    """
    import shlex

    words = ["trainyard", "train", args.config, "--work-dir", str(work_dir)]
    if args.seed is not None:
        words += ["--seed", str(args.seed)]
    flags = (("--amp", args.amp), ("--auto-scale-lr", args.auto_scale_lr), ("--deterministic", args.deterministic))
    words += [flag for flag, given in flags if given]
    if args.launcher:
        words += ["--launcher", args.launcher]
    if args.load_from:
        words += ["--load-from", args.load_from]
    words += ["--resume"] + ([args.resume] if args.resume not in (None, "auto") and not saved else [])
    if args.cfg_options:
        words += ["--cfg-options", *args.cfg_options]
    return shlex.join(words)
