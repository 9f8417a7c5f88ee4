"""``trainyard verify-resume CONFIG``: check that a run killed and resumed ends exactly where an uninterrupted one does."""

from __future__ import annotations

import argparse
from typing import Any

from trainyard.cli.arguments import add_cfg_options, count_at_least

__all__ = ["add_verbs"]

EXIT_DIFFERENT = 1


def add_verbs(commands: Any) -> None:
    verify = commands.add_parser(
        "verify-resume",
        help="train N iterations, then again killed at K and resumed, and compare every tensor of the two ends",
        description="Runs CONFIG for --iters iterations; runs it again, kills it with SIGKILL after iteration --kill-at "
                    "and resumes it with --resume; then compares every parameter, buffer, optimizer tensor, scheduler, "
                    "hook, loop and RNG state of the two final checkpoints. Prints PASS, or the first difference by "
                    "its full name (exit status 1).",
    )
    verify.add_argument("config", help="config file")
    verify.add_argument("--iters", type=count_at_least(2), default=8, help="iterations of each run (default 8)")
    verify.add_argument("--kill-at", type=count_at_least(1), default=None, metavar="K",
                        help="the iteration after which the second run is killed (default: half of --iters)")
    verify.add_argument("--launcher", choices=("none", "pytorch"), default="none",
                        help="one process, or --nproc processes under torchrun")
    verify.add_argument("--nproc", type=count_at_least(1), default=2, help="processes with --launcher pytorch (default 2)")
    verify.add_argument("--work-dir", default=None,
                        help="where the two runs go (default: work_dirs/<config name>_verify_resume)")
    add_cfg_options(verify)
    verify.set_defaults(handler=_verify_resume)


def _verify_resume(args: argparse.Namespace) -> int:
    from trainyard.resume_check import verify_resume

    report = verify_resume(args.config, iters=args.iters, kill_at=args.kill_at, launcher=args.launcher, nproc=args.nproc,
                           cfg_options=args.cfg_options, work_dir=args.work_dir, echo=lambda line: print(line, flush=True))
    print(report.summary())
    return 0 if report.passed else EXIT_DIFFERENT
