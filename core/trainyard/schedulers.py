"""Learning-rate and momentum schedules as functions of training progress.

A schedule's value depends only on the current epoch or iteration, never on how
many times it was stepped, so a resumed run continues exactly. Schedules with
``begin``/``end`` windows chain as in MMEngine: the value of a parameter is its
base value times the factor of every schedule of that parameter, and a schedule
holds its first factor before its window and its last factor after it. Linear
warm-up for 500 iterations then poly decay is::

    param_scheduler = [
        dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
        dict(type='PolyLR', power=0.9, eta_min=1e-4, by_epoch=False, begin=500, end=20000),
    ]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

__all__ = [
    "ParamScheduler",
    "LinearLR",
    "ConstantLR",
    "CosineAnnealingLR",
    "PolyLR",
    "MultiStepLR",
    "StepLR",
    "ExponentialLR",
    "apply_schedules",
]

INFINITY = math.inf


class ParamScheduler:
    """Base class: ``factor(progress)`` times the base value gives the parameter.

    Args:
        optimizer: the optimizer whose param groups are scheduled.
        begin, end: the window, in epochs (``by_epoch=True``) or iterations.
        by_epoch: whether progress is counted in epochs or iterations.
        convert_to_iter_based: with ``by_epoch``, update every iteration using the
            fractional epoch instead of once per epoch.
    """

    param_name = "lr"

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        begin: float = 0,
        end: float = INFINITY,
        by_epoch: bool = True,
        convert_to_iter_based: bool = False,
    ) -> None:
        if end <= begin:
            raise ValueError(f"{type(self).__name__}: end ({end}) must be greater than begin ({begin})")
        self.optimizer = optimizer
        self.begin, self.end = begin, end
        self.by_epoch = by_epoch
        self.convert_to_iter_based = convert_to_iter_based
        key = f"initial_{self.param_name}"
        for group in optimizer.param_groups:
            group.setdefault(key, _read(group, self.param_name))

    def progress(self, epoch: int, iteration: int, iters_per_epoch: int) -> float:
        """Where training is, in this schedule's unit."""
        if not self.by_epoch:
            return iteration
        if self.convert_to_iter_based:
            return iteration / max(iters_per_epoch, 1)
        return epoch

    def factor(self, t: float, base: float) -> float:
        """Multiplier of ``base`` at progress ``t`` (``t`` already clamped to the window)."""
        raise NotImplementedError

    def factor_at(self, t: float, base: float) -> float:
        return self.factor(min(max(t, self.begin), self.end), base)

    def state_dict(self) -> dict[str, Any]:
        """Schedules are pure functions of progress: only their settings are recorded."""
        return {"type": type(self).__name__, "begin": self.begin, "end": self.end, "by_epoch": self.by_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("type") != type(self).__name__:
            raise ValueError(f"checkpoint holds a {state.get('type')} schedule where the config has {type(self).__name__}")

    def _window(self) -> float:
        if self.end == INFINITY:
            raise ValueError(f"{type(self).__name__} needs a finite 'end' (or T_max)")
        return self.end - self.begin


class LinearLR(ParamScheduler):
    """Factor moves linearly from ``start_factor`` to ``end_factor`` over the window (warm-up)."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, **window) -> None:
        super().__init__(optimizer, **window)
        self.start_factor, self.end_factor = start_factor, end_factor

    def factor(self, t, base):
        return self.start_factor + (self.end_factor - self.start_factor) * (t - self.begin) / self._window()


class ConstantLR(ParamScheduler):
    """Factor ``factor`` inside the window, 1 after it."""

    def __init__(self, optimizer, factor: float = 1.0 / 3, **window) -> None:
        super().__init__(optimizer, **window)
        self.constant = factor

    def factor(self, t, base):
        return self.constant if t < self.end else 1.0


class CosineAnnealingLR(ParamScheduler):
    """Half a cosine from the base value to ``eta_min`` (or ``eta_min_ratio * base``) over ``T_max``."""

    def __init__(self, optimizer, T_max: float | None = None, eta_min: float | None = None,
                 eta_min_ratio: float | None = None, **window) -> None:
        super().__init__(optimizer, **window)
        self.T_max = T_max if T_max is not None else self._window()
        self.eta_min, self.eta_min_ratio = eta_min, eta_min_ratio

    def factor(self, t, base):
        floor = _floor(base, self.eta_min, self.eta_min_ratio)
        value = floor + (base - floor) * (1 + math.cos(math.pi * (t - self.begin) / self.T_max)) / 2
        return value / base if base else 0.0


class PolyLR(ParamScheduler):
    """``(1 - progress) ** power`` decay from the base value to ``eta_min`` over the window."""

    def __init__(self, optimizer, power: float = 1.0, eta_min: float = 0.0, **window) -> None:
        super().__init__(optimizer, **window)
        self.power, self.eta_min = power, eta_min

    def factor(self, t, base):
        remaining = 1 - (t - self.begin) / self._window()
        value = self.eta_min + (base - self.eta_min) * remaining**self.power
        return value / base if base else 0.0


class MultiStepLR(ParamScheduler):
    """Multiply by ``gamma`` at each milestone (epochs or iterations, counted from 0)."""

    def __init__(self, optimizer, milestones: Sequence[int], gamma: float = 0.1, **window) -> None:
        super().__init__(optimizer, **window)
        self.milestones, self.gamma = sorted(milestones), gamma

    def factor(self, t, base):
        return self.gamma ** sum(1 for m in self.milestones if t >= m)


class StepLR(ParamScheduler):
    """Multiply by ``gamma`` every ``step_size`` epochs or iterations from ``begin``."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, **window) -> None:
        super().__init__(optimizer, **window)
        self.step_size, self.gamma = step_size, gamma

    def factor(self, t, base):
        return self.gamma ** ((t - self.begin) // self.step_size)


class ExponentialLR(ParamScheduler):
    """Multiply by ``gamma`` every epoch or iteration from ``begin``."""

    def __init__(self, optimizer, gamma: float, **window) -> None:
        super().__init__(optimizer, **window)
        self.gamma = gamma

    def factor(self, t, base):
        return self.gamma ** (t - self.begin)


def _momentum(cls: type[ParamScheduler]) -> type[ParamScheduler]:
    name = cls.__name__.replace("LR", "Momentum")
    return type(name, (cls,), {"param_name": "momentum", "__doc__": f"{cls.__name__} applied to momentum."})


LinearMomentum = _momentum(LinearLR)
ConstantMomentum = _momentum(ConstantLR)
CosineAnnealingMomentum = _momentum(CosineAnnealingLR)
PolyMomentum = _momentum(PolyLR)
MultiStepMomentum = _momentum(MultiStepLR)
StepMomentum = _momentum(StepLR)
ExponentialMomentum = _momentum(ExponentialLR)


def _floor(base: float, eta_min: float | None, eta_min_ratio: float | None) -> float:
    if eta_min_ratio is not None:
        return base * eta_min_ratio
    return eta_min or 0.0


def _read(group: dict, name: str) -> float:
    if name == "momentum" and "momentum" not in group and "betas" in group:
        return group["betas"][0]
    if name not in group:
        raise ValueError(f"the optimizer has no '{name}' to schedule")
    return group[name]


def _write(group: dict, name: str, value: float) -> None:
    if name == "momentum" and "momentum" not in group and "betas" in group:
        group["betas"] = (value, *group["betas"][1:])
    else:
        group[name] = value


def apply_schedules(
    schedulers: Sequence[ParamScheduler], epoch: int, iteration: int, iters_per_epoch: int
) -> None:
    """Set every scheduled parameter of every group to its value at this point of training."""
    by_param: dict[tuple[int, str], list[ParamScheduler]] = {}
    for scheduler in schedulers:
        by_param.setdefault((id(scheduler.optimizer), scheduler.param_name), []).append(scheduler)
    for group_schedulers in by_param.values():
        name = group_schedulers[0].param_name
        for group in group_schedulers[0].optimizer.param_groups:
            base = group[f"initial_{name}"]
            factor = 1.0
            for scheduler in group_schedulers:
                factor *= scheduler.factor_at(scheduler.progress(epoch, iteration, iters_per_epoch), base)
            _write(group, name, base * factor)
