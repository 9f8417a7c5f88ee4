"""A training progress bar on a terminal (tqdm): iterations, rate, ETA, loss; log lines print above it."""

from __future__ import annotations

import sys
import time
from typing import Any

from trainyard.hooks.hook import Hook


class ProgressBarHook(Hook):
    """While training, on rank 0 and only when stdout is a terminal, a tqdm bar over all iterations.

    The bar shows iterations done of ``max_iters`` (a resumed run starts where it
    stopped), speed, ETA, the epoch and the last loss. Console log lines keep coming,
    printed above the bar; in a file or a pipe (and on other ranks) there is no bar and
    the log lines are the progress. The bar is redrawn at most every
    ``refresh_seconds``: between redraws an iteration costs one clock read, and the
    loss is read (a device sync) only at a redraw.

    Args:
        refresh_seconds: least time between redraws.
    """

    priority = "LOW"

    def __init__(self, refresh_seconds: float = 0.5) -> None:
        self.refresh_seconds = refresh_seconds
        self._bar: Any = None
        self._redirect: Any = None
        self._shown_iter = 0
        self._next_redraw = 0.0

    @staticmethod
    def wanted(rank: int) -> bool:
        """A bar only on rank 0 of a run whose stdout is a terminal."""
        return rank == 0 and sys.stdout.isatty()

    def before_train(self, runner: Any) -> None:
        if not self.wanted(runner.rank):
            return
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        self._redirect = logging_redirect_tqdm(loggers=[runner.logger])
        self._redirect.__enter__()
        self._shown_iter = runner.iter
        self._bar = tqdm(total=runner.max_iters, initial=runner.iter, unit="it", file=sys.stdout, dynamic_ncols=True,
                         desc="train", leave=True, mininterval=0)  # this hook decides when to redraw
        self._next_redraw = time.monotonic() + self.refresh_seconds

    def overrides(self, point: str) -> bool:
        """No bar (a file, a pipe, another rank): not called per iteration at all (unless a subclass is)."""
        if point == "after_train_iter" and type(self).after_train_iter is ProgressBarHook.after_train_iter:
            return self._bar is not None
        return super().overrides(point)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if self._bar is None:
            return
        now = time.monotonic()
        if now < self._next_redraw and runner.iter < runner.max_iters:
            return
        self._next_redraw = now + self.refresh_seconds
        postfix = {}
        if runner.max_epochs:
            postfix["epoch"] = f"{min(runner.epoch + 1, runner.max_epochs)}/{runner.max_epochs}"
        loss = (outputs or {}).get("loss")
        if loss is not None:
            postfix["loss"] = f"{float(loss):.4g}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(runner.iter - self._shown_iter)
        self._shown_iter = runner.iter

    def before_val(self, runner: Any) -> None:
        if self._bar is not None:
            self._bar.clear()  # validation's own counter uses the line

    def after_val(self, runner: Any) -> None:
        if self._bar is not None:
            self._bar.refresh()

    def after_train(self, runner: Any) -> None:
        self._close()

    def after_run(self, runner: Any) -> None:
        self._close()  # a run that stopped early never reaches after_train's bar update

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            self._redirect = None
