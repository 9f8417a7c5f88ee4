"""Stops training when a validation metric has stopped improving."""

from __future__ import annotations

import math
from typing import Any

from trainyard.errors import ConfigError
from trainyard.hooks.hook import Hook


class EarlyStoppingHook(Hook):
    """Ends training after ``patience`` validations without an improvement of ``min_delta``.

    Args:
        monitor: the metric name, as the evaluator reports it (``'mIoU'``, ``'accuracy'``).
        rule: ``'greater'`` or ``'less'`` is better.
        patience: validations to wait.
        min_delta: the smallest change that counts as an improvement.
    """

    priority = "LOW"

    def __init__(self, monitor: str, rule: str = "greater", patience: int = 5, min_delta: float = 0.0) -> None:
        if rule not in ("greater", "less"):
            raise ValueError(f"EarlyStoppingHook rule must be 'greater' or 'less', got {rule!r}")
        self.monitor, self.rule, self.patience, self.min_delta = monitor, rule, patience, min_delta
        self.best = -math.inf if rule == "greater" else math.inf
        self.waited = 0

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        if not metrics or self.monitor not in metrics:
            raise ConfigError(
                f"EarlyStoppingHook monitors '{self.monitor}', but validation reported {sorted(metrics or {})}"
            )
        score = metrics[self.monitor]
        improved = score > self.best + self.min_delta if self.rule == "greater" else score < self.best - self.min_delta
        if improved:
            self.best, self.waited = score, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            runner.logger.info(
                f"Early stopping: '{self.monitor}' has not improved on {self.best:.4f} for {self.waited} validations"
            )
            runner.train_loop.stop_training = True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "waited": self.waited}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.waited = state["best"], state["waited"]
