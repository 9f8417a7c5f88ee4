"""What a model is before it trains: parameters (total, trainable, per module) and multiply-adds for one input.

Operations are counted by :class:`torch.utils.flop_counter.FlopCounterMode` on one
``mode='predict'`` forward pass. It counts a multiply-add as 2 FLOPs; the summary
reports multiply-adds (MACs = FLOPs / 2), the unit torchvision's model tables and
mmcv's ``get_flops`` print (torchvision's ResNet-50: 4.09 G at 224x224).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["ModelSummary", "ModuleCount", "summarize_model", "format_count", "read_sample_batch", "preserved_rng"]


@dataclass
class ModuleCount:
    """One module's row: its parameters and the multiply-adds run inside it (None when not counted)."""

    name: str
    parameters: int
    trainable: int
    macs: int | None = None


@dataclass
class ModelSummary:
    """Parameter and multiply-add counts of a model; ``str()`` is the table the run log shows."""

    model_name: str
    parameters: int
    trainable: int
    macs: int | None = None
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)
    """Shape of each image of the counted forward pass (one sample: one shape)."""
    modules: list[ModuleCount] = field(default_factory=list)

    def lines(self) -> list[str]:
        head = f"model {self.model_name}: {format_count(self.parameters)} parameters ({format_count(self.trainable)} trainable)"
        if self.macs is not None:
            shapes = ", ".join("x".join(map(str, shape)) for shape in self.input_shapes)
            head += f", {format_count(self.macs)} multiply-adds (MACs) for one input of {shapes}"
        rows = [("module", "parameters", "trainable", "MACs")]
        rows += [(m.name, format_count(m.parameters), format_count(m.trainable), "-" if m.macs is None else format_count(m.macs))
                 for m in self.modules if m.parameters or m.macs]  # a module with neither (a preprocessor) says nothing
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        table = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
        return [head, *(f"  {line}" for line in table)] if len(rows) > 1 else [head]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def format_count(count: int) -> str:
    """``25557032`` -> ``'25.56 M'``: decimal prefixes (k, M, G, T), two decimals."""
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(count) >= scale:
            return f"{count / scale:.2f} {prefix}"
    return str(count)


def summarize_model(model: nn.Module, batch: dict[str, Any] | None = None, depth: int = 1) -> ModelSummary:
    """Count ``model``'s parameters and, given a preprocessed ``batch`` of one sample, its multiply-adds.

    The forward pass is ``model(batch, mode='predict')`` in eval mode without
    gradients; each module's train/eval flag is restored afterwards, so this may run
    before training. ``depth`` is how deep the per-module rows go (1: the model's
    children).
    """
    rows = [_module_count(name, module) for name, module in _modules_to_depth(model, depth)]
    summary = ModelSummary(
        type(model).__name__,
        sum(p.numel() for p in model.parameters()),
        sum(p.numel() for p in model.parameters() if p.requires_grad),
        modules=rows,
    )
    if batch is None:
        return summary
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, depth=depth)
    with _eval_mode(model), torch.no_grad(), counter:
        model(batch, mode="predict")
    per_module = counter.get_flop_counts()
    summary.macs = int(counter.get_total_flops()) // 2
    summary.input_shapes = _image_shapes(batch.get("inputs"))
    root = type(model).__name__
    for row in rows:
        row.macs = _flops_within(per_module, f"{root}.{row.name}", model.get_submodule(row.name)) // 2
    return summary


def _flops_within(per_module: Mapping[str, Mapping[Any, int]], key: str, module: nn.Module) -> int:
    """FLOPs counted in ``module``; a container never called itself (a ``ModuleList``) sums its children."""
    if key in per_module:
        return sum(per_module[key].values())
    return sum(_flops_within(per_module, f"{key}.{name}", child) for name, child in module.named_children())


def _modules_to_depth(model: nn.Module, depth: int) -> Iterator[tuple[str, nn.Module]]:
    for name, module in model.named_modules():
        if name and name.count(".") < depth:
            yield name, module


def _module_count(name: str, module: nn.Module) -> ModuleCount:
    parameters = list(module.parameters())
    return ModuleCount(name, sum(p.numel() for p in parameters), sum(p.numel() for p in parameters if p.requires_grad))


def _image_shapes(inputs: Any) -> list[tuple[int, ...]]:
    if isinstance(inputs, torch.Tensor):
        return [tuple(inputs.shape[1:])] * inputs.shape[0] if inputs.dim() == 4 else [tuple(inputs.shape)]
    if isinstance(inputs, (list, tuple)):
        return [tuple(image.shape) for image in inputs if isinstance(image, torch.Tensor)]
    return []


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for one pass; then every module gets back its own flag (a model may keep frozen parts in eval)."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


@contextlib.contextmanager
def preserved_rng(device: torch.device | None = None) -> Iterator[None]:
    """Random draws inside leave torch's (and the device's), numpy's and Python's generators as they were.

    Reading a sample seeds the generators (random augmentation): a summary before
    training must not change what training draws, or a resumed run would drift.
    """
    devices = [device] if device is not None and device.type == "cuda" else []
    numpy_state, python_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


def read_sample_batch(dataset: Any, collate_fn: Callable[[Sequence[Any]], Any], index: int = 0) -> Any:
    """Sample ``index`` of ``dataset`` as a batch of one, collated as its dataloader would.

    A dataloader's dataset is read as in the first epoch (the same random augmentation).
    """
    from trainyard.data import SeededDataset

    return collate_fn([dataset[(0, index)] if isinstance(dataset, SeededDataset) else dataset[index]])
