"""``auto_scale_lr``: the linear scaling rule, as MMEngine applies it.

A config's learning rate is tuned for one total batch: mmdet's 1x schedules use lr
0.02 for 16 images a step (8 GPUs x 2). Run with another total batch, the same lr is
too high or too low. With ``auto_scale_lr=dict(enable=True, base_batch_size=16)`` (or
``trainyard train --auto-scale-lr``) every parameter group's lr is multiplied by
``total batch / base_batch_size`` (Goyal et al., 2017), where the total batch is what
one optimizer step averages over: ``batch_size x world size x accumulative_counts``.
MMEngine leaves accumulation out; an accumulated step averages over the whole window,
so it is counted here.

As in MMEngine only ``lr`` is scaled, after the paramwise ``lr_mult`` (their ratios
hold), and it happens before the schedules are built, which record each group's
``initial_lr``. Absolute values in schedules (``eta_min``) are not scaled
(``eta_min_ratio`` follows the scaled lr). A resumed run continues with the lr saved
in its checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainyard.errors import ConfigError

__all__ = ["auto_scale_lr_options", "scale_lr", "total_batch_size"]


def auto_scale_lr_options(value: Any) -> tuple[bool, int | None]:
    """``(enable, base_batch_size)`` of an ``auto_scale_lr`` config, checked: a wrong one is a :class:`ConfigError`."""
    if value is None:
        return False, None
    if not isinstance(value, Mapping):
        raise ConfigError(f"auto_scale_lr must be a dict like dict(enable=False, base_batch_size=16), got {value!r}")
    options = dict(value)
    enable = options.pop("enable", False)
    base = options.pop("base_batch_size", None)
    if options:
        raise ConfigError(f"auto_scale_lr has unknown keys {sorted(options)}; it takes enable and base_batch_size")
    if not isinstance(enable, bool):
        raise ConfigError(f"auto_scale_lr.enable must be True or False, got {enable!r}")
    if base is not None and (isinstance(base, bool) or not isinstance(base, int) or base < 1):
        raise ConfigError(f"auto_scale_lr.base_batch_size must be a positive integer, got {base!r}")
    if enable and base is None:
        raise ConfigError(
            "auto_scale_lr is enabled but has no base_batch_size: set the total batch the config's lr was tuned for, "
            "e.g. auto_scale_lr=dict(enable=True, base_batch_size=16) (mmdet's 1x schedules)"
        )
    return enable, base


def total_batch_size(train_dataloader: Any, world_size: int, accumulative_counts: int) -> tuple[int, str]:
    """Samples one optimizer step averages over, and how that number was computed (for the log)."""
    batch_size = train_dataloader.batch_size
    if batch_size is None:  # a batch sampler (AspectRatioBatchSampler) holds it
        batch_size = train_dataloader.batch_sampler.batch_size
    total = batch_size * world_size * accumulative_counts
    return total, f"batch_size {batch_size} x world size {world_size} x accumulative_counts {accumulative_counts}"


def scale_lr(optim_wrapper: Any, auto_scale_lr: Any, train_dataloader: Any, world_size: int) -> list[str]:
    """Scale the lr of every parameter group when ``auto_scale_lr`` is enabled; returns the lines to log.

    Must run before the parameter schedulers are built.
    """
    enable, base = auto_scale_lr_options(auto_scale_lr)
    if not enable:
        return []
    total, how = total_batch_size(train_dataloader, world_size, optim_wrapper.accumulative_counts)
    factor = total / base
    groups = optim_wrapper.optimizer.param_groups
    before = [group["lr"] for group in groups]
    for group in groups:
        group["lr"] = group["lr"] * factor
    shown = ", ".join(f"{old:g} -> {old * factor:g}" for old in dict.fromkeys(before))
    return [f"auto_scale_lr: lr {shown} (x{factor:g} = total batch {total} / base_batch_size {base}; total batch = {how})"]
