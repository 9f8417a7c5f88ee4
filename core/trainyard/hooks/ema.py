"""Exponential moving average of the weights, used for validation and saved in checkpoints."""

from __future__ import annotations

from typing import Any

import torch

from trainyard.hooks.hook import Hook


class EMAHook(Hook):
    """Keeps ``ema = (1 - momentum) * ema + momentum * weights`` after every step.

    Validation and test run with the averaged weights, and the training weights are
    put back afterwards. Buffers (batch-norm statistics) are copied, not averaged.

    Args:
        momentum: weight of the current parameters in each update.
        begin_iter: iterations to wait before averaging (the EMA copies the weights until then).
    """

    priority = "ABOVE_NORMAL"

    def __init__(self, momentum: float = 0.0002, begin_iter: int = 0) -> None:
        if not 0 < momentum < 1:
            raise ValueError(f"EMAHook momentum must be in (0, 1), got {momentum}")
        self.momentum = momentum
        self.begin_iter = begin_iter
        self._ema: dict[str, torch.Tensor] = {}

    def _model_state(self, runner: Any) -> dict[str, torch.Tensor]:
        return runner.unwrapped_model.state_dict(keep_vars=False)

    def before_run(self, runner: Any) -> None:
        if not self._ema:
            self._ema = {k: v.detach().clone() for k, v in self._model_state(runner).items()}

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        state = self._model_state(runner)
        floats = [k for k, v in state.items() if v.is_floating_point()]
        weight = self.momentum if runner.iter > self.begin_iter else 1.0
        with torch.no_grad():
            torch._foreach_lerp_([self._ema[k] for k in floats], [state[k] for k in floats], weight)
            for key, value in state.items():
                if not value.is_floating_point():
                    self._ema[key].copy_(value)

    def _swap(self, runner: Any) -> None:
        model = runner.unwrapped_model
        current = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self._ema)
        self._ema = current

    def before_val_epoch(self, runner: Any) -> None:
        self._swap(runner)

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        self._swap(runner)

    before_test_epoch = before_val_epoch

    def after_test_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        self._swap(runner)

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self._ema}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._ema = {k: v.clone() for k, v in state["ema"].items()}
