"""``trainyard plugins`` (what each plugin registered, or ``--check NAME``) and ``trainyard new-plugin``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_verbs"]


def add_verbs(commands: Any) -> None:
    plugins = commands.add_parser("plugins", help="list plugins and what each registered; --check NAME tests one")
    plugins.add_argument("--check", default=None, metavar="NAME",
                         help="fail on any load problem of plugin NAME, import each lazy entry and build each component "
                              "that needs no arguments; exit 1 if anything failed (for the plugin's CI)")
    plugins.set_defaults(handler=_plugins)

    from trainyard.scaffold import TASKS

    new_plugin = commands.add_parser("new-plugin", help="write a ready plugin project: entry point, model, dataset, metric, config, tests")
    new_plugin.add_argument("name", help="the distribution name, e.g. acme-signals (its package: acme_signals)")
    new_plugin.add_argument("--task", choices=tuple(TASKS), default="cls",
                            help="what the generated model, dataset and metric do: " + "; ".join(
                                f"{key}: {template.summary}" for key, template in TASKS.items()) + " (default: cls)")
    new_plugin.add_argument("--out", default=None, metavar="DIR", help="where the project goes (default: ./NAME); must be new or empty")
    new_plugin.set_defaults(handler=_new_plugin)


def _plugins(args: argparse.Namespace) -> int:
    if args.check:
        from trainyard.plugin_check import check_plugin

        report = check_plugin(args.check)
        print("\n".join(report.lines()))
        return 1 if report.failed else 0
    from trainyard.plugins import plugin_listing

    print("\n".join(plugin_listing()))
    return 0


def _new_plugin(args: argparse.Namespace) -> int:
    from trainyard.scaffold import TASKS, generate, names_for

    destination = Path(args.out or args.name)
    files = generate(args.name, args.task, destination)
    names = names_for(args.name)
    print(f"wrote {len(files)} files to {destination}/: {TASKS[args.task].summary}, as the plugin '{names['plugin']}'")
    for path in files:
        print(f"  {path.relative_to(destination)}")
    print(f"next:\n  cd {destination}\n  pip install -e \".[test]\"\n  pytest\n  trainyard train {names['package']}::quick.py")
    return 0
