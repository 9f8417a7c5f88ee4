"""``trainyard config``: the resolved config, where each key was set (``--explain``), or how two configs differ (``--diff``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from trainyard.cli.arguments import add_cfg_options

__all__ = ["add_verbs"]


def add_verbs(commands: Any) -> None:
    config = commands.add_parser("config", help="print the resolved config (or where each key was set)")
    config.add_argument("config", help="config file")
    config.add_argument("--explain", action="store_true", help="show which file set each key")
    config.add_argument("--diff", default=None, metavar="OTHER",
                        help="show the keys whose values differ from OTHER (a config, or a run directory's saved config), and where each was set")
    add_cfg_options(config)
    config.set_defaults(handler=_config)


def _config(args: argparse.Namespace) -> int:
    from trainyard.config import explain, format_explanation, load_config, validate_config
    from trainyard.openmmlab_keys import config_warnings

    if args.diff:
        from trainyard.experiments.config_diff import config_diff

        print(config_diff(args.config, args.diff, args.cfg_options))
        return 0
    cfg = load_config(args.config, args.cfg_options)
    validate_config(cfg)
    for line in config_warnings(cfg):
        print(f"trainyard config: warning: {line}", file=sys.stderr)
    if args.explain:
        print(format_explanation(explain(args.config, args.cfg_options)))
    else:
        print(cfg.pretty_text)
    return 0
