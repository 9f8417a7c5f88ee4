"""``trainyard browse`` and ``trainyard summary``: look at the data and the model before a long run."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainyard.cli.arguments import add_cfg_options, count_at_least, output_folder
from trainyard.errors import ConfigError, DatasetError

__all__ = ["add_verbs"]

_SPLITS = ("train", "val", "test")


def add_verbs(commands: Any) -> None:
    browse = commands.add_parser(
        "browse", help="draw dataset samples as the model sees them (after the pipeline and normalisation)",
        description="trainyard browse CONFIG --out DIR: one picture per sample with its targets, and a grid of all",
    )
    browse.add_argument("config", help="config file")
    browse.add_argument("--split", choices=_SPLITS, default="train", help="which dataloader's dataset (default: train)")
    browse.add_argument("--n", type=count_at_least(1), default=16, help="how many samples, from the first (default: 16)")
    browse.add_argument("--out", required=True, metavar="DIR", help="folder for the pictures")
    add_cfg_options(browse)
    browse.set_defaults(handler=_browse)

    summary = commands.add_parser(
        "summary", help="parameters (total, trainable, per module) and multiply-adds of a config's model",
        description="trainyard summary CONFIG: multiply-adds (MACs; 1 MAC = 2 FLOPs) are counted by torch.utils.flop_counter "
                    "on one sample of the dataset after its pipeline, else at --input-size",
    )
    summary.add_argument("config", help="config file")
    summary.add_argument("--split", choices=_SPLITS, default="train",
                         help="the dataset whose first sample sets the input size (default: train)")
    summary.add_argument("--input-size", type=count_at_least(1), nargs=2, default=None, metavar=("HEIGHT", "WIDTH"),
                         help="count at this size, with a blank image, instead of reading a sample")
    summary.add_argument("--depth", type=count_at_least(1), default=1, help="module levels in the table (default: 1)")
    add_cfg_options(summary)
    summary.set_defaults(handler=_summary)


def _inspection_runner(args: argparse.Namespace) -> Any:
    """A Runner for looking only: no hooks, no resume, no weights loaded; pretrained files are not fetched."""
    from trainyard.config import load_config, validate_config
    from trainyard.config_scopes import config_file, config_stem
    from trainyard.pretrained import weights_from_checkpoint
    from trainyard.runner import Runner

    config_file(args.config)
    cfg = load_config(args.config, args.cfg_options)
    validate_config(cfg)
    cfg.work_dir = cfg.get("work_dir") or str(Path("work_dirs") / config_stem(args.config))
    cfg.launcher, cfg.resume, cfg.load_from = "none", False, None
    cfg.default_hooks, cfg.custom_hooks = {}, []
    cfg.log_level = "WARNING"
    with weights_from_checkpoint():  # the counts and the data do not need the pretrained values
        return Runner.from_cfg(cfg)


def _browse(args: argparse.Namespace) -> int:
    out = output_folder(Path(args.out))
    runner = _inspection_runner(args)
    from trainyard.browse import browse_dataset

    print(browse_dataset(runner, args.split, args.n, out).summary())
    return 0


def _summary(args: argparse.Namespace) -> int:
    runner = _inspection_runner(args)
    from trainyard.model_summary import preserved_rng, summarize_model

    with preserved_rng(runner.device):
        batch, note = _sample_batch(runner, args)
        summary = summarize_model(runner.unwrapped_model, runner.preprocess(batch), args.depth)
    print(summary)
    if note:
        print(note)
    return 0


def _sample_batch(runner: Any, args: argparse.Namespace) -> tuple[Any, str | None]:
    """One sample of ``--split`` after its pipeline; else a blank image at ``--input-size`` or at the config's image size."""
    from trainyard.model_summary import read_sample_batch

    key = f"{args.split}_dataloader"
    if args.input_size:
        return _blank_batch(runner, key, tuple(args.input_size)), None
    try:
        loader = runner.dataloader(args.split)
        return read_sample_batch(loader.dataset, loader.collate_fn), None
    except DatasetError as exc:
        size = _configured_size(runner.cfg)
        if size is None:
            raise DatasetError(f"{exc}; to count without the data give --input-size HEIGHT WIDTH") from None
        return _blank_batch(runner, key, size), (
            f"(counted on a blank {size[0]}x{size[1]} image, the config's image size: {key}.dataset could not be read)")


def _configured_size(cfg: Mapping[str, Any]) -> tuple[int, int] | None:
    """The input size a config names in its own variables (``image_size``, ``crop_size``, ``input_size``), as (height, width)."""
    for name in ("input_size", "image_size", "crop_size", "img_size"):
        value = cfg.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value, value
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
            return int(value[0]), int(value[1])
    return None


def _blank_batch(runner: Any, key: str, size: tuple[int, int]) -> Any:
    """A batch of one mid-grey image of ``size``, collated as ``key`` would collate it.

    uint8 for a model with a data preprocessor (which normalises it), else float in 0-1.
    """
    import torch

    from trainyard.registry import COLLATE_FUNCTIONS

    collate_cfg = (runner.cfg.get(key) or {}).get("collate_fn") or {"type": "default_collate"}
    collate = collate_cfg["type"]
    if isinstance(collate, str):
        collate = COLLATE_FUNCTIONS.get(collate)
    if not callable(collate):
        raise ConfigError(f"{key}.collate_fn: {collate!r} is not a function")
    if getattr(runner.unwrapped_model, "data_preprocessor", None) is not None:
        image = torch.full((3, *size), 128, dtype=torch.uint8)
    else:
        image = torch.full((3, *size), 0.5)
    sample = {"inputs": image, "meta": {"index": 0, "ori_size": size}}
    return collate([sample])
