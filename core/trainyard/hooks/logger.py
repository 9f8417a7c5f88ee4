"""Console lines, ``scalars.jsonl`` and TensorBoard at the logging interval."""

from __future__ import annotations

import datetime
from typing import Any

import torch

from trainyard.hooks.hook import Hook

_NOT_LOOKED_UP = object()


class LoggerHook(Hook):
    """Every ``interval`` train iterations: one console line and one scalars record.

    Loss terms are read as numbers only here, so training never waits for the device
    in between. Validation and test metrics are logged when their loop ends.

    Args:
        interval: train iterations between log lines.
        log_metric_by_epoch: step metrics by epoch (epoch-based loops) instead of iteration.
    """

    priority = "BELOW_NORMAL"

    def __init__(self, interval: int = 50, log_metric_by_epoch: bool = True) -> None:
        if interval < 1:
            raise ValueError(f"LoggerHook interval must be >= 1, got {interval}")
        self.interval = interval
        self.log_metric_by_epoch = log_metric_by_epoch
        self._timer: Any = _NOT_LOOKED_UP

    def before_train(self, runner: Any) -> None:
        self._timer = runner.timer  # looked up once: a search of the hooks cost about 20 us a line

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if outputs:
            runner.log_buffer.update_dict(outputs)
        iteration = runner.iter
        if iteration % self.interval == 0 or iteration == runner.max_iters:
            self._log_train(runner, batch_idx)

    def _log_train(self, runner: Any, batch_idx: int) -> None:
        values = runner.log_buffer.pop_means()
        values["lr"] = runner.optimizer.param_groups[0]["lr"]
        timer = self._timer if self._timer is not _NOT_LOOKED_UP else runner.timer  # (a subclass's own before_train)
        eta = ""
        if timer is not None and timer.seconds_per_iter is not None:
            remaining = timer.seconds_per_iter * (runner.max_iters - runner.iter)
            eta = f"eta: {datetime.timedelta(seconds=int(remaining))}  "
        if runner.device.type == "cuda":  # (torch.cuda.is_available() asks the driver: 35 us a line on the CPU)
            values["memory_mb"] = torch.cuda.max_memory_allocated(runner.device) / 2**20
        where = runner.train_loop.progress_text(batch_idx)
        numbers = "  ".join(f"{k}: {_format(v)}" for k, v in values.items())
        runner.logger.info(f"{where}  {eta}{numbers}")
        runner.writer.add_scalars({**values, "epoch": runner.epoch}, step=runner.iter, prefix="train/")

    def _log_metrics(self, runner: Any, metrics: dict[str, float] | None, split: str) -> None:
        if not metrics:
            return
        by_epoch = self.log_metric_by_epoch and getattr(runner.train_loop, "by_epoch", False)
        step = runner.epoch if by_epoch else runner.iter
        # per-class values ('IoU.car') go to the scalar files; the console keeps the summary
        numbers = "  ".join(f"{k}: {_format(v)}" for k, v in metrics.items() if _is_number(v) and "." not in k)
        runner.logger.info(f"{split.capitalize()} ({'epoch' if by_epoch else 'iter'} {step})  {numbers}")
        runner.writer.add_scalars(
            {k: v for k, v in metrics.items() if _is_number(v)}, step=runner.iter, prefix=f"{split}/"
        )

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        self._log_metrics(runner, metrics, "val")

    def after_test_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        self._log_metrics(runner, metrics, "test")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _format(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.4e}"
    return f"{value:.4f}"
