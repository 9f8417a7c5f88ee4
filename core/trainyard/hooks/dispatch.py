"""Calling hooks: ordered by priority, only where overridden, with their time accounted."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from trainyard.hooks.hook import HOOK_POINTS, Hook, priority_value


class HookDispatcher:
    """Holds the runner's hooks and calls them at each point.

    For each point the list of bound methods is computed when a hook is added and again
    after ``before_train`` (hooks may leave points once they have seen the run), so a
    point no hook overrides costs one dict lookup.
    """

    def __init__(self, hooks: Iterable[Hook] = ()) -> None:
        self._hooks: list[Hook] = []
        self._registered: list[Hook] = []
        self._calls: dict[str, list[Any]] = {point: [] for point in HOOK_POINTS}
        self.seconds = 0.0
        for hook in hooks:
            self.add(hook)

    @property
    def hooks(self) -> list[Hook]:
        """The hooks in call order."""
        return list(self._hooks)

    def add(self, hook: Hook, priority: int | str | None = None) -> None:
        """Insert ``hook`` after every hook of lower or equal priority."""
        if not isinstance(hook, Hook):
            raise TypeError(f"hooks must subclass trainyard.hooks.Hook, got {type(hook).__name__}")
        if priority is not None:
            hook.priority = priority
        value = priority_value(hook.priority)
        position = len(self._hooks)
        while position > 0 and priority_value(self._hooks[position - 1].priority) > value:
            position -= 1
        self._hooks.insert(position, hook)
        self._registered.append(hook)
        self.replan()

    def replan(self) -> None:
        """Which methods each point calls: those of the hooks that (still) override it.

        A hook whose :meth:`Hook.overrides` answer changed calls this (a schedule that
        has settled leaves ``before_train_iter``); a point being called goes on with
        the methods it started with.
        """
        self._calls = {
            point: [getattr(h, point) for h in self._hooks if h.overrides(point)] for point in HOOK_POINTS
        }

    def call(self, point: str, runner: Any, **kwargs: Any) -> None:
        methods = self._calls[point]
        if methods:
            start = time.perf_counter()
            try:
                for method in methods:
                    method(runner, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
        if point == "before_train":
            self.replan()  # hooks have seen the run now: one with nothing to do per iteration (no bar to draw) drops out

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any) -> None:
        """``call('before_train_iter', ...)`` for the train loop, every iteration.

        The keywords are spelled out rather than passed on as ``**kwargs``: that built
        and unpacked a dict for every hook, about 0.25 us each, and the path through
        :meth:`Runner.call_hook` cost as much again.
        """
        methods = self._calls["before_train_iter"]
        if methods:
            start = time.perf_counter()
            try:
                for method in methods:
                    method(runner, batch_idx=batch_idx, data_batch=data_batch)
            finally:
                self.seconds += time.perf_counter() - start

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any, outputs: Any) -> None:
        """``call('after_train_iter', ...)`` for the train loop, every iteration (see :meth:`before_train_iter`)."""
        methods = self._calls["after_train_iter"]
        if methods:
            start = time.perf_counter()
            try:
                for method in methods:
                    method(runner, batch_idx=batch_idx, data_batch=data_batch, outputs=outputs)
            finally:
                self.seconds += time.perf_counter() - start

    def state_key(self, hook: Hook) -> str:
        """Where ``hook``'s state sits in a checkpoint: its class name, ``Name#2`` for a second one, ...

        Counted in registration order, so the same config gives the same keys, and a
        checkpoint from before per-instance keys loads into the first hook of each class.
        """
        name = type(hook).__name__
        same_class = [h for h in self._registered if type(h).__name__ == name]
        position = next(i for i, h in enumerate(same_class) if h is hook)
        return name if position == 0 else f"{name}#{position + 1}"

    def state_dict(self) -> dict[str, Any]:
        """Each stateful hook's state, keyed by :meth:`state_key`."""
        states = {}
        for hook in self._registered:
            state = hook.state_dict()
            if state is not None:
                states[self.state_key(hook)] = state
        return states

    def load_state_dict(self, states: dict[str, Any]) -> None:
        for hook in self._registered:
            key = self.state_key(hook)
            if key in states:
                hook.load_state_dict(states[key])
