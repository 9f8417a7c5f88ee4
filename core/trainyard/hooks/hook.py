"""The hook base class: the one place where the whole loop is written out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainyard.runner import Runner

PRIORITIES: Mapping[str, int] = {
    "HIGHEST": 0,
    "VERY_HIGH": 10,
    "HIGH": 30,
    "ABOVE_NORMAL": 40,
    "NORMAL": 50,
    "BELOW_NORMAL": 60,
    "LOW": 70,
    "VERY_LOW": 90,
    "LOWEST": 100,
}

HOOK_POINTS: tuple[str, ...] = (
    "before_run",
    "after_run",
    "before_train",
    "after_train",
    "before_train_epoch",
    "after_train_epoch",
    "before_train_iter",
    "after_train_iter",
    "before_val",
    "after_val",
    "before_val_epoch",
    "after_val_epoch",
    "before_val_iter",
    "after_val_iter",
    "before_test",
    "after_test",
    "before_test_epoch",
    "after_test_epoch",
    "before_test_iter",
    "after_test_iter",
    "before_save_checkpoint",
    "after_load_checkpoint",
)


def priority_value(priority: int | str) -> int:
    """An int priority from a named level (``'NORMAL'``) or an int; lower runs first."""
    if isinstance(priority, str):
        try:
            return PRIORITIES[priority.upper()]
        except KeyError:
            raise ValueError(f"unknown hook priority {priority!r}; use an int or one of {', '.join(PRIORITIES)}") from None
    if isinstance(priority, int) and 0 <= priority <= 100:
        return priority
    raise ValueError(f"hook priority must be an int in [0, 100] or a level name, got {priority!r}")


class Hook:
    """Base class of runner hooks: override the points you need, nothing else is called.

    ``runner.train()`` calls the hook points in this order (``EpochBasedTrainLoop``
    shown; ``IterBasedTrainLoop`` calls ``before_train_epoch``/``after_train_epoch``
    once around all iterations and validates every ``val_interval`` iterations)::

        before_run(runner)
        [after_load_checkpoint(runner, checkpoint)]           # when resuming
        before_train(runner)
        for epoch in range(runner.epoch, max_epochs):
            before_train_epoch(runner)
            for batch_idx, data_batch in enumerate(train_dataloader):
                before_train_iter(runner, batch_idx, data_batch)
                outputs = train_step(data_batch)              # forward, backward, step
                after_train_iter(runner, batch_idx, data_batch, outputs)
                [before_save_checkpoint(runner, checkpoint)]  # when a checkpoint is written
            after_train_epoch(runner)
            if it is time to validate:
                before_val(runner)
                before_val_epoch(runner)
                for batch_idx, data_batch in enumerate(val_dataloader):
                    before_val_iter(runner, batch_idx, data_batch)
                    outputs = model(data_batch, mode='predict')
                    after_val_iter(runner, batch_idx, data_batch, outputs)
                after_val_epoch(runner, metrics)
                after_val(runner)
        after_train(runner)
        after_run(runner)

    ``runner.test()`` (and ``runner.val()``) is a run of its own: ``before_run``,
    ``before_test``, ``before_test_epoch``, ``before_test_iter``/``after_test_iter``
    for each batch, ``after_test_epoch(metrics)``, ``after_test``, ``after_run``.

    ``runner.iter`` and ``runner.epoch`` count what is finished: inside
    ``after_train_iter`` the iteration just done is already counted, inside
    ``after_train_epoch`` the epoch just done is.

    Conventions:

    - ``before_train_iter`` and ``after_train_iter`` run every iteration: keep them cheap,
      and never read a CUDA tensor's value there unless the hook exists to do so.
    - A hook whose state must survive a resume implements ``state_dict`` and
      ``load_state_dict``; the checkpoint stores it under ``hooks`` by class name.
    - ``priority`` (class attribute, or ``priority=`` in the config) orders hooks at
      every point; lower runs first, equal priorities keep registration order.
    """

    priority: int | str = "NORMAL"

    def before_run(self, runner: Runner) -> None: ...

    def after_run(self, runner: Runner) -> None: ...

    def before_train(self, runner: Runner) -> None: ...

    def after_train(self, runner: Runner) -> None: ...

    def before_train_epoch(self, runner: Runner) -> None: ...

    def after_train_epoch(self, runner: Runner) -> None: ...

    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None: ...

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None: ...

    def before_val(self, runner: Runner) -> None: ...

    def after_val(self, runner: Runner) -> None: ...

    def before_val_epoch(self, runner: Runner) -> None: ...

    def after_val_epoch(self, runner: Runner, metrics: dict[str, float] | None = None) -> None: ...

    def before_val_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None: ...

    def after_val_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None: ...

    def before_test(self, runner: Runner) -> None: ...

    def after_test(self, runner: Runner) -> None: ...

    def before_test_epoch(self, runner: Runner) -> None: ...

    def after_test_epoch(self, runner: Runner, metrics: dict[str, float] | None = None) -> None: ...

    def before_test_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None: ...

    def after_test_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None: ...

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None: ...

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None: ...

    def state_dict(self) -> dict[str, Any] | None:
        """State to save in checkpoints; ``None`` (the default) means the hook has none."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def overrides(self, point: str) -> bool:
        """Whether this hook's class implements ``point`` (only those are called).

        A hook may narrow this for its instance, to leave the per-iteration points when
        it has nothing to do there (a progress bar with no terminal). The runner asks
        when the hook is registered and again once every ``before_train`` has run; a
        hook whose answer changes later calls ``runner.dispatcher.replan()``.
        """
        return getattr(type(self), point) is not getattr(Hook, point)
