"""``trainyard test`` and ``trainyard val``: evaluate a checkpoint once, optionally writing the metrics as JSON."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainyard.cli.arguments import add_run_options, config_from_arguments
from trainyard.errors import CheckpointError, ConfigError, TrainyardError

__all__ = ["add_verbs"]


def add_verbs(commands: Any) -> None:
    for split in ("test", "val"):
        evaluate = commands.add_parser(
            split, help=f"evaluate a checkpoint on the {'test' if split == 'test' else 'validation'} set",
            description=f"trainyard {split} CONFIG CHECKPOINT | trainyard {split} CHECKPOINT_OR_WORK_DIR",
        )
        evaluate.add_argument("source", metavar="CONFIG_OR_RUN", help="a config file (then the checkpoint), a checkpoint, or a work "
                              "dir or run directory (its best checkpoint, else its last; the config saved with it is used, as data)")
        evaluate.add_argument("checkpoint", nargs="?", default=None, metavar="CHECKPOINT", help="the checkpoint, after a config file")
        evaluate.add_argument("--out", default=None, metavar="FILE", help="also write the metrics as JSON")
        evaluate.add_argument("--dump", default=None, metavar="DIR", help="write every prediction in the field's format: COCO results "
                              "JSON (detection), PNG masks of label ids (segmentation), JSON lines of top-k classes (classification)")
        evaluate.add_argument("--show-dir", default=None, metavar="DIR", help="write the prediction picture of every image")
        evaluate.add_argument("--tta", action="store_true", help="test-time augmentation: the model inside the config's tta_model "
                              "(default: the model's own, a horizontal flip), see docs/inference.md")
        evaluate.add_argument("--non-strict", action="store_true",
                              help="evaluate a checkpoint that lacks some of the model's keys (they keep their initial values)")
        add_run_options(evaluate, work_dir_help="where the evaluation's log and pictures go, in a <timestamp>_"
                        f"{split} folder (default: the checkpoint's folder for a run, else work_dirs/<config name>)")
        evaluate.set_defaults(handler=_evaluate, split=split)


def _evaluation_config(args: argparse.Namespace) -> Any:
    """``CONFIG CHECKPOINT`` loads the config file; a checkpoint, work dir or run directory alone uses the config saved in it."""
    if args.source.endswith(".py"):
        if args.checkpoint is None:
            raise TrainyardError(f"after the config {args.source}, give the checkpoint (or give a work dir instead of the config)")
        args.config = args.source
        return config_from_arguments(args, args.split)
    if args.checkpoint is not None:
        raise TrainyardError(f"unexpected argument {args.checkpoint}: {args.split} takes CONFIG CHECKPOINT, or a checkpoint or work dir alone")
    return config_from_arguments(args, args.split, saved=_saved_config(args))


def _saved_config(args: argparse.Namespace) -> Any:
    """The config saved in the checkpoint that ``args.source`` names, read as literals (never run), ``--cfg-options`` applied.

    Its ``work_dir`` becomes the checkpoint's folder, so the evaluation's log lands beside the run
    wherever it was trained; ``args.checkpoint`` becomes the checkpoint found.
    """
    from trainyard.checkpoint import read_checkpoint
    from trainyard.config import OVERRIDES_SOURCE, config_from_saved_text, parse_overrides
    from trainyard.inference import find_checkpoint

    path = find_checkpoint(args.source)
    meta = read_checkpoint(path).get("meta")
    text = meta.get("config") if isinstance(meta, Mapping) else None
    if not isinstance(text, str) or not text:
        raise CheckpointError(f"{path} holds no config (not written by trainyard); give the config file too: "
                              f"trainyard {args.split} CONFIG {path}")
    cfg = config_from_saved_text(text, str(path))
    if cfg.get("custom_imports"):
        logging.getLogger("trainyard").warning(
            f"the config saved in {path} names custom_imports; a checkpoint is data, so they are not imported. "
            f"If its model is not found, give the config file too: trainyard {args.split} CONFIG {path}")
    cfg.work_dir = str(path.parent)
    overrides = parse_overrides(args.cfg_options)
    try:
        cfg.merge_from_dict(overrides)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ConfigError(f"cannot apply {OVERRIDES_SOURCE} {overrides}: {exc}") from None
    args.checkpoint = str(path)
    return cfg


def _add_result_files(cfg: Any, args: argparse.Namespace) -> None:
    """``--dump`` and ``--show-dir`` become a :class:`~trainyard.hooks.result_files.ResultFilesHook` in ``custom_hooks``."""
    if not (args.dump or args.show_dir):
        return
    from trainyard.hooks.result_files import prepare_folder

    for option, folder in (("--dump", args.dump), ("--show-dir", args.show_dir)):
        if folder:
            prepare_folder(folder, option)  # before the model is built and any image evaluated
    hook = {"type": "ResultFilesHook", "dump_dir": args.dump, "show_dir": args.show_dir}
    cfg.custom_hooks = [*(cfg.get("custom_hooks") or []), hook]


def _evaluate(args: argparse.Namespace) -> int:
    """Load the checkpoint, run the loop once, optionally write the metrics."""
    cfg = _evaluation_config(args)
    if args.tta:
        from trainyard.tta import use_tta

        use_tta(cfg)
    _add_result_files(cfg, args)
    import contextlib

    from trainyard import dist
    from trainyard.pretrained import weights_from_checkpoint
    from trainyard.runner import Runner

    # a strict evaluation replaces every weight: pretrained files the config names are not fetched
    replaced = contextlib.nullcontext() if args.non_strict else weights_from_checkpoint()
    try:
        with replaced:
            runner = Runner.from_cfg(cfg)
        metrics = runner.test() if args.split == "test" else runner.val()
    except BaseException:
        dist.destroy()
        raise
    dist.destroy(synchronize=True)
    if args.out and runner.rank == 0:
        Path(args.out).write_text(json.dumps(metrics, indent=2) + "\n")
    return 0
