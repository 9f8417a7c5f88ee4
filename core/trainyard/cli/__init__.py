"""The ``trainyard`` command: a table of verbs, one small module per family.

Each verb module parses its arguments, calls the module that does the work, and
prints. The ``tools/*.py`` scripts are thin wrappers over :func:`main`. A mistake in
the user's input (:class:`~trainyard.errors.TrainyardError`) is printed as one message
with exit status 2; an error raised by user code keeps its traceback.

| verbs | module |
| --- | --- |
| ``train`` | :mod:`trainyard.cli.train` |
| ``verify-resume`` | :mod:`trainyard.cli.verify_resume` |
| ``test``, ``val`` | :mod:`trainyard.cli.evaluate` |
| ``predict``, ``export`` | :mod:`trainyard.cli.inference` |
| ``runs``, ``plot``, ``sweep`` | :mod:`trainyard.cli.experiments` |
| ``config`` | :mod:`trainyard.cli.config` |
| ``browse``, ``summary`` | :mod:`trainyard.cli.inspect` |
| ``plugins``, ``new-plugin`` | :mod:`trainyard.cli.plugins` |
| ``convert-checkpoint`` | :mod:`trainyard.cli.checkpoints` |
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from trainyard.cli import checkpoints, config, evaluate, experiments, inference, inspect, plugins, train, verify_resume
from trainyard.errors import TrainyardError

__all__ = ["EXIT_USER_ERROR", "build_parser", "main", "run_tool"]

EXIT_USER_ERROR = 2
VERB_MODULES = (train, verify_resume, evaluate, inference, config, inspect, experiments, plugins, checkpoints)
"""Each adds its verbs to the parser with ``add_verbs(commands)``, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainyard", description="Train and test models from MMEngine-style configs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in VERB_MODULES:
        module.add_verbs(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    from trainyard.interrupts import TrainingInterrupted

    try:
        return handler(args)
    except TrainyardError as exc:
        if _is_rank_zero() or not exc.same_on_every_rank:
            print(f"trainyard {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except TrainingInterrupted as exc:
        if _is_rank_zero():
            print(f"trainyard {args.command}: {exc}. Continue with:\n  {train.resume_command(args, exc.work_dir, saved=exc.checkpoint is not None)}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        message = _peer_failure_message(exc)
        if message is None:
            raise  # an error from user code keeps its traceback
        print(f"trainyard {args.command}: rank {os.environ.get('RANK', '?')}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        if _is_rank_zero():
            print(f"trainyard {args.command}: stopped at once; resume from the last checkpoint with --resume", file=sys.stderr)
        return getattr(exc, "exit_code", 130)


def _peer_failure_message(exc: Exception) -> str | None:
    """One line for a collective that failed because of another rank, instead of a gloo/NCCL traceback.

    Only the process group's own errors qualify: a user's error that mentions a timeout
    (a dataset's read timeout) keeps its traceback.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return None
    from trainyard.dist import is_collective_failure

    if not is_collective_failure(exc):
        return None
    lowered = f"{type(exc).__name__} {exc}".lower()
    if "timed out" in lowered or "timeout" in lowered:
        return (
            "a collective operation timed out: another rank died without a message, the ranks have data of "
            "unequal length, or a hook calls a collective on one rank only. env_cfg.timeout sets the limit in seconds"
        )
    return "stopped because another process of this job failed or left; its own message is above"


def _is_rank_zero() -> bool:
    return os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")) == "0"


def run_tool(command: str) -> None:
    """Entry for ``tools/<command>.py``: ``python tools/train.py CONFIG`` == ``trainyard train CONFIG``."""
    sys.exit(main([command, *sys.argv[1:]]))
