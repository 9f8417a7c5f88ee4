"""Stops training at the first non-finite loss, before it reaches a checkpoint."""

from __future__ import annotations

from typing import Any

import torch

from trainyard.errors import TrainyardError
from trainyard.hooks.hook import Hook


class NonFiniteLossError(TrainyardError):
    """The loss became NaN or infinite."""


class NaNGuardHook(Hook):
    """Checks the loss after every ``interval`` iterations and stops on NaN or inf.

    It runs before the checkpoint hook, so the iteration that produced the bad loss
    is never saved and ``last_checkpoint`` keeps naming the last good state. Reading
    the loss waits for the device: on a GPU, an ``interval`` above 1 makes it cheaper.
    """

    priority = "HIGH"

    def __init__(self, interval: int = 1) -> None:
        self.interval = interval

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if not outputs or runner.iter % self.interval:
            return
        loss = outputs.get("loss")
        if loss is not None and not bool(torch.isfinite(loss)):
            terms = ", ".join(f"{k}={v.item():.4g}" for k, v in outputs.items() if isinstance(v, torch.Tensor) and v.numel() == 1)
            last = runner.work_dir / "last_checkpoint"
            kept = f"; the last good checkpoint is {last.read_text().strip()}" if last.is_file() else ""
            raise NonFiniteLossError(
                f"non-finite loss at iteration {runner.iter} (epoch {runner.epoch}): {terms}. Training stopped{kept}"
            )
