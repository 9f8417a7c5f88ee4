"""Sets learning rate and momentum from the schedules before each step."""

from __future__ import annotations

import math
from typing import Any

from trainyard.hooks.hook import Hook
from trainyard.schedulers import apply_schedules


class ParamSchedulerHook(Hook):
    """Applies ``runner.param_schedulers`` at the start of every epoch and iteration.

    The values are computed from ``runner.epoch`` and ``runner.iter`` alone, so the
    schedule after a resume is the one an uninterrupted run would have had. Once every
    schedule's window has ended the values no longer change, and iterations skip the
    computation (epoch starts still apply them): the hook then leaves
    ``before_train_iter``, as it does from the start when every schedule is epoch-wise.
    """

    priority = "LOW"
    _per_iteration = True
    _settled_after: float = math.inf
    """The iteration from which no schedule changes any more (infinite for an open-ended one)."""

    def overrides(self, point: str) -> bool:
        if point == "before_train_iter" and not self._per_iteration:
            # a subclass that implements the point itself is still called there
            return type(self).before_train_iter is not ParamSchedulerHook.before_train_iter
        return super().overrides(point)

    def before_train(self, runner: Any) -> None:
        schedulers = runner.param_schedulers
        self._per_iteration = any(not s.by_epoch or s.convert_to_iter_based for s in schedulers)
        iters_per_epoch = runner.train_loop.iters_per_epoch
        self._settled_after = max((s.end if not s.by_epoch else s.end * iters_per_epoch for s in schedulers), default=0)

    def _apply(self, runner: Any) -> None:
        if runner.param_schedulers:
            apply_schedules(runner.param_schedulers, runner.epoch, runner.iter, runner.train_loop.iters_per_epoch)

    def before_train_epoch(self, runner: Any) -> None:
        self._apply(runner)

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        if not self._per_iteration:  # (a subclass's own before_train_iter calling this one)
            return
        if runner.iter <= self._settled_after:
            self._apply(runner)
        else:
            self._per_iteration = False  # every window has ended: nothing changes per iteration any more
            runner.dispatcher.replan()
