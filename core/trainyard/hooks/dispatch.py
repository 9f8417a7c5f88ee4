"""Calling hooks: ordered by priority, only where overridden, with their time accounted."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from trainyard.hooks.hook import HOOK_POINTS, Hook, priority_value


class HookDispatcher:
    """Holds the runner's hooks and calls them at each point.

    For each point the list of bound methods is computed once, so a point no hook
    overrides costs one dict lookup and an empty loop.
    """

    def __init__(self, hooks: Iterable[Hook] = ()) -> None:
        self._hooks: list[Hook] = []
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

    def state_dict(self) -> dict[str, Any]:
        """Each stateful hook's state, keyed by class name."""
        states = {}
        for hook in self._hooks:
            state = hook.state_dict()
            if state is not None:
                states[type(hook).__name__] = state
        return states

    def load_state_dict(self, states: dict[str, Any]) -> None:
        for hook in self._hooks:
            if type(hook).__name__ in states:
                hook.load_state_dict(states[type(hook).__name__])
