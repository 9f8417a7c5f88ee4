"""Iteration and data-loading time, for the log and the ETA."""

from __future__ import annotations

import time
from typing import Any

from trainyard.hooks.hook import Hook


class IterTimerHook(Hook):
    """Records ``time`` (whole train iteration) and ``data_time`` (waiting for the batch).

    ``seconds_per_iter`` averages every iteration after the first of this session
    (the first pays for start-up); the logger uses it for the ETA. Time spent in
    validation is not counted against the next train iteration.
    """

    priority = "NORMAL"

    def __init__(self) -> None:
        self._last = 0.0
        self._total = 0.0
        self._count = 0

    def _restart_clock(self, runner: Any) -> None:
        self._last = time.perf_counter()

    before_train_epoch = after_val = _restart_clock

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        runner.log_buffer.update("data_time", time.perf_counter() - self._last)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        now = time.perf_counter()
        elapsed = now - self._last
        self._last = now
        runner.log_buffer.update("time", elapsed)
        self._count += 1
        if self._count > 1:
            self._total += elapsed

    @property
    def seconds_per_iter(self) -> float | None:
        return self._total / (self._count - 1) if self._count > 1 else None
