"""Sets learning rate and momentum from the schedules before each step."""

from __future__ import annotations

from typing import Any

from trainyard.hooks.hook import Hook
from trainyard.schedulers import apply_schedules


class ParamSchedulerHook(Hook):
    """Applies ``runner.param_schedulers`` at the start of every epoch and iteration.

    The values are computed from ``runner.epoch`` and ``runner.iter`` alone, so the
    schedule after a resume is the one an uninterrupted run would have had.
    """

    priority = "LOW"

    def before_train(self, runner: Any) -> None:
        self._per_iteration = any(not s.by_epoch or s.convert_to_iter_based for s in runner.param_schedulers)

    def _apply(self, runner: Any) -> None:
        if runner.param_schedulers:
            apply_schedules(runner.param_schedulers, runner.epoch, runner.iter, runner.train_loop.iters_per_epoch)

    def before_train_epoch(self, runner: Any) -> None:
        self._apply(runner)

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        if self._per_iteration:
            self._apply(runner)
