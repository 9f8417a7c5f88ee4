"""What several verbs share: common options, argument types, and the config of a run built from the command line."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from trainyard.errors import ConfigError, TrainyardError

__all__ = ["add_cfg_options", "add_run_options", "count_at_least", "output_folder", "config_from_arguments"]


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys: 'a.b=1' 'c=[1,2]' 'name=a, b' (Python literals, else strings)",
    )


def add_run_options(parser: argparse.ArgumentParser,
                    work_dir_help: str = "where checkpoints and logs go (default: work_dirs/<config name>)") -> None:
    parser.add_argument("--work-dir", default=None, help=work_dir_help)
    parser.add_argument("--launcher", choices=("none", "pytorch", "slurm"), default=None,
                        help="how processes were started (default: detected from the environment)")
    add_cfg_options(parser)


def count_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type for a count such as a batch size (at least 1) or worker processes (at least 0)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    return parse


def output_folder(out: Path) -> Path:
    """``--out``, created: a file in its place (or above it) or a folder that cannot be created is one clear error."""
    blocking = next((folder for folder in (out, *out.parents) if folder.exists() and not folder.is_dir()), None)
    if blocking is not None:
        raise TrainyardError(f"--out {out}: {blocking} is a file; give a folder (new or existing) for the results")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainyardError(f"--out {out}: cannot create the folder ({exc.strerror}); give a folder you can write to") from None
    return out


def config_from_arguments(args: argparse.Namespace, mode: str, saved: Any = None) -> Any:
    """Load the config and apply the command-line options on top of ``--cfg-options``.

    ``saved`` is a run's own config, read as data with ``--cfg-options`` applied, in place
    of ``args.config`` (``trainyard test WORK_DIR``); its ``work_dir`` stays unless ``--work-dir`` is given.
    """
    from trainyard.config_scopes import config_file, config_stem

    if saved is None:
        config_file(args.config)  # before torch is imported: a typo is answered at once
    from trainyard.config import load_config, validate_config
    from trainyard.dist import detect_launcher

    cfg = load_config(args.config, args.cfg_options) if saved is None else saved
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif not cfg.get("work_dir"):
        cfg.work_dir = str(Path("work_dirs") / config_stem(args.config))
    detected = detect_launcher()  # torchrun's or srun's environment outranks a dumped config's launcher='none'
    cfg.launcher = args.launcher or (detected if detected != "none" else None) or cfg.get("launcher") or "none"
    if mode == "train":
        randomness = dict(cfg.get("randomness") or {})
        if args.seed is not None:
            randomness["seed"] = args.seed
        if args.deterministic:
            randomness["deterministic"] = True
        cfg.randomness = randomness
        if args.amp:
            cfg.optim_wrapper = {**dict(cfg.get("optim_wrapper") or {}), "type": "AmpOptimWrapper"}
        if args.auto_scale_lr:
            cfg.auto_scale_lr = _enabled_auto_scale_lr(cfg.get("auto_scale_lr"))
        if args.resume is not None:
            cfg.resume = args.resume
        if args.overwrite:
            cfg.overwrite = True
        if args.load_from is not None:
            cfg.load_from = args.load_from
    else:
        cfg.load_from = dict(path=args.checkpoint, strict=False) if args.non_strict else args.checkpoint
        cfg.resume = False
    validate_config(cfg, mode=mode)
    return cfg


def _enabled_auto_scale_lr(value: Any) -> dict[str, Any]:
    """``--auto-scale-lr``: the config's ``auto_scale_lr`` switched on; it must say which total batch its lr is for."""
    options = dict(value) if isinstance(value, Mapping) else {}
    if options.get("base_batch_size") is None:
        raise ConfigError(
            "--auto-scale-lr needs auto_scale_lr.base_batch_size in the config: the total batch its lr was tuned for "
            "(e.g. --cfg-options auto_scale_lr.base_batch_size=16, as mmdet's 1x schedules)"
        )
    return {**options, "enable": True}
