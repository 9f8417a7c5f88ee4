"""Train, validation and test loops, chosen in the config by ``train_cfg.type`` and friends.

A loop receives the runner and its dataloader and calls the runner's hooks at the
points :class:`trainyard.hooks.Hook` documents. A plugin may register its own loop
(a GAN loop with two optimizers, say) in ``LOOPS`` and select it with ``train_cfg``.

Training position is counted in finished iterations: ``loop.iter`` is authoritative,
the epoch and the position inside it are derived from it, so a checkpoint written
after any iteration resumes at the next one.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch

from trainyard import dist
from trainyard.errors import CheckpointError, ModelContractError
from trainyard.amp import autocast_context
from trainyard.interrupts import log_stop_request

if TYPE_CHECKING:
    from trainyard.evaluation import Evaluator
    from trainyard.runner import Runner

__all__ = ["EpochBasedTrainLoop", "IterBasedTrainLoop", "ValLoop", "TestLoop", "train_step", "parse_losses"]


def parse_losses(outputs: Any, model_name: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum the terms whose key contains ``loss``; every tensor is kept, detached, for the log."""
    if not isinstance(outputs, Mapping):
        raise ModelContractError(
            f"{model_name}(batch, mode='loss') must return a dict of tensors, got {type(outputs).__name__}"
        )
    terms = []
    logged: dict[str, torch.Tensor] = {}
    term_detached = None
    for key, value in outputs.items():
        if isinstance(value, (list, tuple)):
            value = sum(v.mean() for v in value)
        if not isinstance(value, torch.Tensor):
            continue
        value = value.mean() if value.ndim else value
        logged[key] = detached = value.detach()
        if "loss" in key:
            terms.append(value)
            term_detached = detached
    if not terms:
        raise ModelContractError(
            f"{model_name}(batch, mode='loss') returned no loss: its keys are {sorted(outputs)}, "
            "and only keys containing 'loss' are summed into the loss"
        )
    if len(terms) == 1:  # the usual single term: its detached copy serves as the loss's
        loss = terms[0]
        logged["loss"] = term_detached
    else:
        loss = sum(terms)
        logged["loss"] = loss.detach()
    return loss, logged


def train_step(runner: Runner, data_batch: Any) -> dict[str, torch.Tensor]:
    """Forward in ``mode='loss'``, backward and (when accumulation allows) step."""
    batch = runner.preprocess(data_batch)
    wrapper = runner.optim_wrapper
    model = runner.model
    with wrapper.optim_context(model):
        outputs = model(batch, mode="loss")
    loss, logged = parse_losses(outputs, type(runner.unwrapped_model).__name__)
    logged.update(wrapper.update_params(loss))
    return logged


class _TrainLoop:
    """What both train loops share: counting, one iteration, resume position, validation."""

    by_epoch = False

    def __init__(self, runner: Runner, dataloader: Any, val_begin: int, val_interval: int) -> None:
        self.runner = runner
        self.dataloader = dataloader
        self.iters_per_epoch = len(dataloader)
        if self.iters_per_epoch == 0:
            raise ModelContractError("the train dataloader yields no batch: is the dataset empty, or batch_size larger with drop_last?")
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.iter = 0
        self.stop_training = False
        self.max_iters = 0
        self.interrupted: int | None = None
        """The signal that stopped training (see :mod:`trainyard.interrupts`), agreed by every rank."""
        self._signal_received = 0
        self._pending_stop: Any = None

    def request_stop(self, signal_number: int) -> None:
        """Stop at the next iteration boundary (from a signal handler: only sets a flag)."""
        self._signal_received = signal_number

    def _agree_on_stop(self) -> None:
        """Every rank must stop after the same iteration, so a signal that reached one rank is shared.

        Under DDP each iteration starts a one-integer all-reduce of the flag in the
        background and reads the previous iteration's result: the stop comes one
        iteration later, and the network latency is hidden behind the iteration.
        """
        if self.runner.world_size == 1:
            received = self._signal_received
        else:
            received = self._pending_stop() if self._pending_stop is not None else 0
            self._pending_stop = dist.max_over_ranks_async(self._signal_received)
        if received:
            self.interrupted = received
            self.stop_training = True
            log_stop_request(self.runner.logger, received, self.iter)

    def _settle_stop_agreement(self) -> None:
        """Wait for the last background stop all-reduce: no collective is left in flight when the process group goes."""
        if self._pending_stop is not None:
            self._pending_stop()
            self._pending_stop = None

    @property
    def epoch(self) -> int:
        return self.iter // self.iters_per_epoch

    def run_iter(self, batch_idx: int, data_batch: Any) -> None:
        runner = self.runner
        hooks = runner.dispatcher  # straight to the per-iteration points: they run every iteration
        hooks.before_train_iter(runner, batch_idx, data_batch)
        outputs = train_step(runner, data_batch)
        self.iter += 1
        hooks.after_train_iter(runner, batch_idx, data_batch, outputs)
        self._agree_on_stop()

    def _batches_from(self, position: int) -> Iterator[Any]:
        """This epoch's batches from batch ``position`` on, without loading the skipped ones."""
        sampler = getattr(self.dataloader, "sampler", None)
        batch_sampler = getattr(self.dataloader, "batch_sampler", None)
        if position and hasattr(batch_sampler, "set_start"):
            batch_sampler.set_start(position)
            return iter(self.dataloader)
        if position and hasattr(sampler, "set_start"):
            sampler.set_start(position * self.dataloader.batch_size)
            return iter(self.dataloader)
        iterator = iter(self.dataloader)
        for _ in range(position):
            next(iterator)
        return iterator

    def _validate(self) -> None:
        if self.runner.val_loop is not None:
            self.runner.val_loop.run()
            self.runner.model.train()

    def progress_text(self, batch_idx: int) -> str:
        raise NotImplementedError

    def _global_batch(self) -> int | None:
        """Samples one iteration takes over all ranks, when the dataloader says its batch size."""
        batch_size = getattr(self.dataloader, "batch_size", None) or getattr(getattr(self.dataloader, "batch_sampler", None), "batch_size", None)
        return int(batch_size) * self.runner.world_size if batch_size else None

    def _keeps_global_order(self) -> bool:
        """Whether the data order is the same for any number of processes: :class:`DefaultSampler` in plain batches.

        Its rank ``r`` takes every ``world_size``-th sample of one ``(seed, epoch)``
        order, so after ``k`` samples of an epoch on any world size the same first ``k``
        of that order are consumed. Grouping batch samplers (by aspect ratio) are per rank.
        """
        from trainyard.samplers import DefaultSampler

        batch_sampler = getattr(self.dataloader, "batch_sampler", None)
        plain_batches = batch_sampler is None or type(batch_sampler) is torch.utils.data.BatchSampler
        return plain_batches and isinstance(getattr(self.dataloader, "sampler", None), DefaultSampler)

    def state_dict(self) -> dict[str, Any]:
        """The position: finished iterations, and the samples of this epoch consumed over all ranks (``samples_in_epoch``)."""
        state: dict[str, Any] = {"iter": self.iter, "iters_per_epoch": self.iters_per_epoch, "world_size": self.runner.world_size}
        global_batch = self._global_batch()
        if global_batch is not None:
            state["samples_in_epoch"] = self.iter % self.iters_per_epoch * global_batch
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take the saved position.

        Epochs of another length on the same number of processes mean the dataloader
        changed (batch size, dataset, drop_last): the position would land elsewhere, so
        that is refused. On another number of processes the epoch length changes by
        necessity; an epoch-based run continues at the same fraction of the same epoch,
        with a warning (the data order differs from an uninterrupted run).
        """
        saved_iter = int(state["iter"])
        saved = int(state.get("iters_per_epoch", self.iters_per_epoch))
        if saved == self.iters_per_epoch:
            self.iter = saved_iter
            return
        world_size = self.runner.world_size
        saved_world_size = int(state.get("world_size", world_size))
        if saved_world_size == world_size:
            raise CheckpointError(
                f"cannot resume: the checkpoint was saved with {saved} iterations per epoch, this run has {self.iters_per_epoch} "
                "(the train_dataloader's batch_size, dataset length or drop_last changed), so "
                f"its iteration {saved_iter} would land elsewhere in another epoch; resume with the same "
                "train_dataloader, or start a new run from its weights with load_from"
            )
        epoch, within = divmod(saved_iter, saved)
        if "samples_in_epoch" in state and self.by_epoch:
            self.iter = epoch * self.iters_per_epoch + self._iterations_for(int(state["samples_in_epoch"]), epoch, saved_world_size)
            self.runner.logger.info(
                f"the checkpoint was saved by {saved_world_size} processes after {state['samples_in_epoch']} samples of epoch "
                f"{epoch + 1}; on {world_size} processes training continues exactly there, at iteration {self.iter}"
            )
            return
        self.iter = epoch * self.iters_per_epoch + within * self.iters_per_epoch // saved if self.by_epoch else saved_iter
        self.runner.logger.warning(
            f"the checkpoint was saved by {saved_world_size} processes at iteration {saved_iter} ({saved} per epoch); on "
            f"{world_size} an epoch has {self.iters_per_epoch}, so training continues at iteration {self.iter} "
            f"(epoch {self.iter // self.iters_per_epoch}, batch {self.iter % self.iters_per_epoch})"
        )


    def _iterations_for(self, samples: int, epoch: int, saved_world_size: int) -> int:
        """Iterations of this run that consume exactly ``samples`` of an epoch, or a refusal saying why none do."""
        if samples == 0:
            return 0
        global_batch = self._global_batch()
        where = (f"the checkpoint was saved by {saved_world_size} processes after {samples} samples of epoch {epoch + 1}, "
                 f"and this run on {self.runner.world_size} processes")
        if not self._keeps_global_order():
            raise CheckpointError(
                f"cannot continue mid-epoch on another number of processes: {where} uses a sampler whose order depends on the "
                f"number of processes (only DefaultSampler with plain batches keeps it). Resume on {saved_world_size} processes, "
                "or from a checkpoint saved at the end of an epoch"
            )
        if global_batch is None or samples % global_batch:
            raise CheckpointError(
                f"cannot continue mid-epoch on another number of processes: {where} takes {global_batch} samples per iteration, "
                f"which does not divide {samples}, so the data position cannot carry over. Resume on {saved_world_size} "
                "processes, choose train_dataloader.batch_size so that batch_size x processes divides it, or resume from a "
                "checkpoint saved at the end of an epoch"
            )
        return samples // global_batch


class EpochBasedTrainLoop(_TrainLoop):
    """``max_epochs`` passes over the train dataloader; validate every ``val_interval`` epochs and at the end."""

    by_epoch = True

    def __init__(self, runner: Runner, dataloader: Any, max_epochs: int, val_begin: int = 1, val_interval: int = 1) -> None:
        super().__init__(runner, dataloader, val_begin, val_interval)
        self.max_epochs = max_epochs
        self.max_iters = max_epochs * self.iters_per_epoch

    def run(self) -> None:
        runner = self.runner
        runner.call_hook("before_train")
        while self.epoch < self.max_epochs and not self.stop_training:
            self.run_epoch()
            if self.stop_training:
                break
            done = self.epoch
            if done >= self.val_begin and (done % self.val_interval == 0 or done == self.max_epochs):
                self._validate()
        self._settle_stop_agreement()
        runner.call_hook("after_train")

    def run_epoch(self) -> None:
        runner = self.runner
        runner.call_hook("before_train_epoch")
        runner.model.train()
        position = self.iter % self.iters_per_epoch
        for batch_idx, data_batch in enumerate(self._batches_from(position), start=position):
            self.run_iter(batch_idx, data_batch)
            if self.stop_training:
                break
        runner.call_hook("after_train_epoch")

    def progress_text(self, batch_idx: int) -> str:
        current_epoch = (self.iter - 1) // self.iters_per_epoch + 1
        return f"Epoch(train) [{current_epoch}][{batch_idx + 1}/{self.iters_per_epoch}]"


class IterBasedTrainLoop(_TrainLoop):
    """``max_iters`` iterations, cycling the dataloader; validate every ``val_interval`` iterations and at the end."""

    def __init__(self, runner: Runner, dataloader: Any, max_iters: int, val_begin: int = 1, val_interval: int = 1000) -> None:
        super().__init__(runner, dataloader, val_begin, val_interval)
        self.max_iters = max_iters

    def _cycle(self) -> Iterator[Any]:
        sampler = getattr(self.dataloader, "batch_sampler", None)
        if not hasattr(sampler, "set_epoch"):
            sampler = getattr(self.dataloader, "sampler", None)
        position = self.iter % self.iters_per_epoch
        while True:
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self.epoch)
            yield from self._batches_from(position)
            position = 0

    def run(self) -> None:
        runner = self.runner
        runner.call_hook("before_train")
        runner.call_hook("before_train_epoch")
        runner.model.train()
        batches = self._cycle()
        while self.iter < self.max_iters and not self.stop_training:
            self.run_iter(self.iter, next(batches))
            if self.stop_training:
                break
            if self.iter >= self.val_begin and (self.iter % self.val_interval == 0 or self.iter == self.max_iters):
                self._validate()
        runner.call_hook("after_train_epoch")
        self._settle_stop_agreement()
        runner.call_hook("after_train")

    def progress_text(self, batch_idx: int) -> str:
        return f"Iter(train) [{self.iter}/{self.max_iters}]"


class _EvalLoop:
    """Shared by validation and test: predict every batch, feed the evaluator, report metrics.

    Runs without gradients (``torch.inference_mode()`` when no training is under
    way), and under autocast when the config trains with AMP
    (``optim_wrapper.type='AmpOptimWrapper'`` or a ``dtype``).
    """

    split = ""

    def __init__(self, runner: Runner, dataloader: Any, evaluator: Evaluator) -> None:
        self.runner = runner
        self.dataloader = dataloader
        self.evaluator = evaluator

    def run(self) -> dict[str, float]:
        runner, split = self.runner, self.split
        runner.call_hook(f"before_{split}")
        runner.call_hook(f"before_{split}_epoch")
        model = runner.unwrapped_model
        model.eval()
        self.evaluator.reset()
        progress = Progress(len(self.dataloader), split, enabled=runner.rank == 0)
        amp_dtype = runner.amp_dtype  # once per pass, not per batch
        autocast = autocast_context(runner.device, True, amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
        # inference_mode for a standalone evaluation; no_grad inside training, where a module could keep a tensor
        # made here (a cache) and training would then fail to save it for backward
        with torch.inference_mode() if runner.train_loop is None else torch.no_grad():
            runner.strategy.share_buffers()  # every rank evaluates rank 0's batch-norm statistics, the checkpoint's
            for batch_idx, data_batch in enumerate(self.dataloader):
                runner.call_hook(f"before_{split}_iter", batch_idx=batch_idx, data_batch=data_batch)
                batch = runner.preprocess(data_batch)
                with autocast:
                    predictions = model(batch, mode="predict")
                self.evaluator.process(batch, predictions)
                runner.call_hook(f"after_{split}_iter", batch_idx=batch_idx, data_batch=data_batch, outputs=predictions)
                progress.update(batch_idx + 1)
        progress.close()
        metrics = self.evaluator.evaluate()
        if runner.writer.enabled:
            for name, picture in self.evaluator.pictures().items():
                runner.writer.add_picture(f"{split}/{name}", picture, runner.iter)
        runner.call_hook(f"after_{split}_epoch", metrics=metrics)
        runner.call_hook(f"after_{split}")
        return metrics


class ValLoop(_EvalLoop):
    """One pass over the validation dataloader."""

    split = "val"


class TestLoop(_EvalLoop):
    """One pass over the test dataloader."""

    split = "test"


class Progress:
    """A one-line progress counter on a terminal; silent in files and pipes."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.label = total, label
        self.enabled = enabled and sys.stdout.isatty()

    def update(self, done: int) -> None:
        if self.enabled:
            sys.stdout.write(f"\r{self.label}: {done}/{self.total}")
            sys.stdout.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stdout.write("\r" + " " * (len(self.label) + 24) + "\r")
            sys.stdout.flush()
