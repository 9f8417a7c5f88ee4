"""Stops training at a non-finite loss, before it reaches a checkpoint (one of the default hooks)."""

from __future__ import annotations

import math
from typing import Any

import torch

from trainyard import dist
from trainyard.checkpoint import last_good_checkpoint_text
from trainyard.errors import NonFiniteError
from trainyard.hooks.hook import Hook
from trainyard.transfer import scalars_to_host


class NaNGuardHook(Hook):
    """Watches the loss for NaN and infinity without making the host wait for the device.

    Each iteration keeps a reference to its (detached) loss, which costs no device
    work; the losses kept are read together (from a GPU in one transfer) every
    ``interval`` iterations, before every checkpoint is written, and when training
    ends; under DDP every rank reads them at the same moment and a bad loss on any
    rank stops them all. The stop names the iteration and the last good checkpoint,
    and exits non-zero: a checkpoint with non-finite state is never written, so
    keep-last-N can never delete the newest good one.
    """

    priority = "HIGH"

    def __init__(self, interval: int = 50) -> None:
        if interval < 1:
            raise ValueError(f"NaNGuardHook interval must be >= 1, got {interval}")
        self.interval = interval
        self._losses: list[torch.Tensor] = []
        self._iters: list[int] = []
        self._first_bad = -1

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        iteration = runner.iter
        loss = outputs.get("loss") if outputs else None
        if loss is not None:
            self._losses.append(loss.detach() if loss.requires_grad else loss)  # a custom loop's loss must not keep its graph
            self._iters.append(iteration)
        if iteration % self.interval == 0:
            self.check(runner)

    def _first_bad_iteration(self) -> int:
        """The first iteration whose kept loss was not finite (-1: none); forgets the losses checked."""
        if self._first_bad < 0 and self._losses:
            numbers = scalars_to_host(self._losses)  # on a device: one transfer for all of them
            self._first_bad = next((i for i, n in zip(self._iters, numbers) if not math.isfinite(n)), -1)
        self._losses.clear()
        self._iters.clear()
        return self._first_bad

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        self.check(runner)

    def after_train(self, runner: Any) -> None:
        self.check(runner)

    def check(self, runner: Any) -> None:
        """Raise :class:`NonFiniteError` if any rank has seen a non-finite loss (a collective call)."""
        local = self._first_bad_iteration()
        seen = dist.all_gather_objects(local) if runner.world_size > 1 else [local]
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
