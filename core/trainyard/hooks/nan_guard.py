"""Stops training at a non-finite loss, before it reaches a checkpoint (one of the default hooks)."""

from __future__ import annotations

from typing import Any

import torch

from trainyard import dist
from trainyard.checkpoint import last_good_checkpoint_text
from trainyard.errors import NonFiniteError
from trainyard.hooks.hook import Hook



class NaNGuardHook(Hook):
    """Watches the loss for NaN and infinity without making the host wait for the device.

    Each iteration records, on the loss's own device, the first iteration whose loss
    was not finite. The record is read every ``interval`` iterations, before every
    checkpoint is written, and when training ends; under DDP every rank reads it at
    the same moment and a bad loss on any rank stops them all. The stop names the
    iteration and the last good checkpoint, and exits non-zero: a checkpoint with
    non-finite state is never written, so keep-last-N can never delete the newest
    good one.
    """

    priority = "HIGH"

    def __init__(self, interval: int = 50) -> None:
        if interval < 1:
            raise ValueError(f"NaNGuardHook interval must be >= 1, got {interval}")
        self.interval = interval
        self._first_bad: torch.Tensor | None = None

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        loss = (outputs or {}).get("loss")
        if loss is not None:
            bad_here = ~torch.isfinite(loss.detach())
            if self._first_bad is None:
                self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
            self._first_bad = torch.where(bad_here & (self._first_bad < 0), runner.iter, self._first_bad)
        if runner.iter % self.interval == 0:
            self.check(runner)

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        self.check(runner)

    def after_train(self, runner: Any) -> None:
        self.check(runner)

    def check(self, runner: Any) -> None:
        """Raise :class:`NonFiniteError` if any rank has seen a non-finite loss (a collective call)."""
        local = int(self._first_bad) if self._first_bad is not None else -1
        seen = dist.all_gather_objects(local)
        bad = [(iteration, rank) for rank, iteration in enumerate(seen) if iteration >= 0]
        if not bad:
            return
        iteration, rank = min(bad)
        where = f" on rank {rank}" if runner.world_size > 1 else ""
        raise NonFiniteError(
            f"the loss became NaN or infinite at iteration {iteration}{where}; training stopped at iteration "
            f"{runner.iter} and nothing after the last good checkpoint was saved. {last_good_checkpoint_text(runner.work_dir)} "
            "Lower the learning rate, clip gradients (optim_wrapper.clip_grad) or check the data"
        )
