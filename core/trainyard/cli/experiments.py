"""``trainyard runs``, ``plot`` and ``sweep``: compare runs by what they wrote, and train a grid of config values."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trainyard.cli.arguments import add_cfg_options

__all__ = ["add_verbs"]


def add_verbs(commands: Any) -> None:
    runs = commands.add_parser("runs", help="list the runs under work dirs: status, progress, metrics, differing config keys")
    runs.add_argument("work_dirs", nargs="*", metavar="DIR", help="where to look (default: work_dirs)")
    runs.add_argument("--sort", default=None, metavar="KEY", help="a metric (best first: mIoU, val/accuracy_top1), iterations, wall_s, started or a config key")
    runs.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                      help="keep runs whose status, name or config key has this value (repeatable)")
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(handler=_runs)

    plot = commands.add_parser("plot", help="curves of several runs in one PNG, and their mean time per iteration")
    plot.add_argument("runs", nargs="+", metavar="RUN", help="run directories or work dirs holding them")
    plot.add_argument("--keys", default="loss", help="comma-separated scalars: loss,mIoU (train/ and val/ are tried)")
    plot.add_argument("--out", default="curves.png", metavar="PNG", help="the picture (default: curves.png)")
    plot.add_argument("--x", choices=("iter", "epoch"), default="iter", help="horizontal axis")
    plot.add_argument("--smooth", type=float, default=0.0, help="exponential smoothing of train curves, 0 to 0.99")
    plot.set_defaults(handler=_plot)

    sweep = commands.add_parser("sweep", help="train every combination of a grid of config values, then rank the runs")
    sweep.add_argument("config", help="config file")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=[VALUES]", required=True,
                       help="a config key and its values: 'optim_wrapper.optimizer.lr=[0.01,0.1]' (repeat for more keys)")
    sweep.add_argument("--work-dir", default=None, metavar="DIR",
                       help="where the runs go, one work dir per combination (default: work_dirs/<config>_sweep)")
    sweep.add_argument("--launcher", choices=("none", "slurm"), default="none",
                       help="none: one run after the other here; slurm: one srun job per combination, side by side")
    sweep.add_argument("--partition", default=None, help="SLURM partition (with --launcher slurm)")
    sweep.add_argument("--sort", default=None, metavar="METRIC", help="rank the table by this metric (default: the first validation metric)")
    add_cfg_options(sweep)
    sweep.set_defaults(handler=_sweep)


def _runs(args: argparse.Namespace) -> int:
    from trainyard.experiments.runs import differing_keys, filter_runs, format_table, main_metrics, read_runs, sort_runs

    roots = args.work_dirs or ["work_dirs"]
    runs = filter_runs(read_runs(roots), args.filter)
    differing_keys(runs)
    runs = sort_runs(runs, args.sort)
    if args.json:
        print(json.dumps([run.to_json() for run in runs], indent=1))
    elif not runs:
        print(f"no runs under {', '.join(roots)}")
    else:
        print(format_table(runs, main_metrics(runs)))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from trainyard.experiments.plot import plot_curves, run_label
    from trainyard.experiments.runs import differing_keys, read_runs

    runs = read_runs(args.runs, required=True)
    differing_keys(runs)
    keys = [key.strip() for key in args.keys.split(",") if key.strip()]
    drawn = plot_curves(runs, keys, Path(args.out), x_axis=args.x, smoothing=args.smooth)
    print(f"wrote {args.out}: " + "; ".join(f"{name} ({len(lines)} runs)" for name, lines in drawn.items()))
    print("mean time per iteration (train/time), as mmdet's analyze_logs.py cal_train_time:")
    for run in runs:
        seconds = f"{run.s_per_iter:.4f} s" if run.s_per_iter is not None else "not logged"
        print(f"  {run_label(run)}: {seconds} over {run.iterations} iterations ({run.status})")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from trainyard.config_scopes import config_file, config_stem

    config_file(args.config)
    from trainyard.experiments.runs import differing_keys, find_runs, format_table, main_metrics, read_run, sort_runs
    from trainyard.experiments.sweep import check_plan, parse_grid, plan, run_sweep

    grid = parse_grid(args.grid)
    root = Path(args.work_dir or Path("work_dirs") / f"{config_stem(args.config)}_sweep")
    combinations = plan(grid, root)
    check_plan(args.config, grid, combinations, args.cfg_options)
    outcomes = run_sweep(args.config, combinations, args.cfg_options, args.launcher, args.partition)
    runs = [read_run(run_dir) for run_dir in find_runs([str(c.work_dir) for c in combinations if c.work_dir.is_dir()])]
    differing_keys(runs)
    metric = args.sort or next(iter(main_metrics(runs, 1)), None)
    print(format_table(sort_runs(runs, metric), main_metrics(runs)) if runs else f"no runs under {root} yet")
    failed = [name for name, result in outcomes.items() if result != "finished"]
    if failed:
        print(f"{len(failed)} of {len(combinations)} runs did not finish: {', '.join(failed)}; their output is in "
              f"<work dir>/sweep_console.log; run the same sweep again to continue them", file=sys.stderr)
        return 1
    return 0
