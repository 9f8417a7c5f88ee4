"""Exponential moving average of the weights: what validation, test, ``load_from`` and exports use."""

from __future__ import annotations

from typing import Any

import torch

from trainyard.hooks.hook import Hook
from trainyard.strategies import load_model_weights


class EMAHook(Hook):
    """Keeps ``ema = (1 - momentum) * ema + momentum * weights`` after every optimizer step.

    Only parameters are averaged; buffers (batch-norm running statistics, counters)
    are copied from the training model, so they always describe real activations.
    Only real optimizer steps count: accumulation micro-steps and steps that
    GradScaler skipped (non-finite fp16 gradients) leave the average alone.

    Validation and test run with the averaged weights, and the training weights are
    put back afterwards. A checkpoint holds the averaged weights as its
    ``state_dict`` (as MMEngine's EMA does), so ``trainyard test``, ``load_from`` and
    anything else reading a checkpoint's weights get the model that was validated;
    the training weights travel in this hook's state and come back on resume.
    What a checkpoint holds does not depend on the hook's priority: one saved before
    this hook's ``after_train_iter`` already includes that step in the average, and one
    saved while evaluation holds the average in the model (the best checkpoint, when
    the checkpoint hook runs first) still stores the training weights apart.

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
        self._parameter_keys: list[str] = []
        self._buffer_keys: list[str] = []
        self._averaged_iter = -1
        self._stashed_training_weights: dict[str, torch.Tensor] | None = None
        """The training weights while validation or test runs with the average in the model."""
        self._training_weights: dict[str, torch.Tensor] | None = None

    def before_run(self, runner: Any) -> None:
        state = runner.unwrapped_model.state_dict(keep_vars=True)
        self._parameter_keys = [k for k, v in state.items() if isinstance(v, torch.nn.Parameter) and v.is_floating_point()]
        self._buffer_keys = [k for k in state if k not in set(self._parameter_keys)]
        if not self._ema:
            self._ema = {k: v.detach().clone() for k, v in state.items()}

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._average_this_step(runner)

    def _average_this_step(self, runner: Any) -> None:
        """Fold this iteration's optimizer step into the average once, whether a save or this hook asks first."""
        if not runner.optim_wrapper.stepped or self._averaged_iter == runner.iter:
            return
        self._averaged_iter = runner.iter
        state = self._stashed_training_weights or runner.unwrapped_model.state_dict()
        weight = self.momentum if runner.iter > self.begin_iter else 1.0
        with torch.no_grad():
            torch._foreach_lerp_([self._ema[k] for k in self._parameter_keys], [state[k] for k in self._parameter_keys], weight)
            for key in self._buffer_keys:
                self._ema[key].copy_(state[key])

    def before_val_epoch(self, runner: Any) -> None:
        model = runner.unwrapped_model
        self._stashed_training_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self._ema)

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        runner.unwrapped_model.load_state_dict(self._stashed_training_weights)
        self._stashed_training_weights = None

    before_test_epoch = before_val_epoch
    after_test_epoch = after_val_epoch

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Store the averaged weights as the model's and the training weights with this hook."""
        self._average_this_step(runner)
        own = checkpoint["hooks"][runner.dispatcher.state_key(self)]
        own["training_weights"] = self._stashed_training_weights or checkpoint["state_dict"]
        checkpoint["state_dict"] = {k: v.detach().clone() for k, v in self._ema.items()}
        checkpoint["meta"]["weights"] = "ema"

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """On resume the model was loaded with the average: take it as the EMA, put the training weights back."""
        if self._training_weights is None:
            return
        model = runner.unwrapped_model
        self._ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
        load_model_weights(model, self._training_weights)  # full weights into an FSDP-sharded model too
        self._training_weights = None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "training_weights" in state:
            self._training_weights = state["training_weights"]
        elif "ema" in state:  # checkpoints written before the average became the state_dict
            self._ema = {k: v.clone() for k, v in state["ema"].items()}
