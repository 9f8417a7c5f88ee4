"""Moving tensors between host and device at the least cost: batches to a GPU, logged numbers back.

Batches bound for a GPU are stacked straight into page-locked memory, so the copy to the device runs asynchronously.

``tensor.to('cuda', non_blocking=True)`` from ordinary (pageable) memory is a
synchronous copy; from page-locked memory it is queued behind the GPU's work and the
host goes on reading the next images. ``tensor.pin_memory()`` on a batch already
stacked costs a second copy (in ``Runner.val`` on an H200 it made a 64x64 pass slower,
see ``docs/benchmark.md``); stacking into a page-locked buffer costs nothing extra.
PyTorch's caching host allocator reuses the buffers and keeps each one alive until its
copy has finished.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["stack_for_device", "scalars_to_host"]


def stack_for_device(tensors: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """``torch.stack(tensors)``, in page-locked memory when ``device`` is a CUDA device (elsewhere a plain stack)."""
    if device.type != "cuda" or not torch.cuda.is_available() or tensors[0].device.type != "cpu":
        return torch.stack(list(tensors))
    first = tensors[0]
    out = torch.empty((len(tensors), *first.shape), dtype=first.dtype, pin_memory=True)
    return torch.stack(list(tensors), out=out)


def scalars_to_host(tensors: Sequence[torch.Tensor]) -> list[float]:
    """Each one-element tensor as a Python float: the logged losses of an interval, the NaN guard's.

    On a device, one stack and one transfer, so the host waits once. On the CPU, where
    nothing is waited for, ``.item()`` each: 57 us for fifty scalars against 97 us
    stacked, with the caches cold as they are after a training step.
    """
    first = tensors[0]
    if first.device.type == "cpu":
        return [t.item() for t in tensors]
    with torch.no_grad():
        try:  # the usual case: scalars on one device
            stacked = torch.stack(list(tensors))
        except RuntimeError:  # shapes or devices differ
            stacked = torch.stack([t.detach().reshape(()).to(first.device) for t in tensors])
        if stacked.numel() != len(tensors):
            raise ValueError(f"only one-element tensors can be read as numbers, got one of shape {tuple(first.shape)}")
        return stacked.float().reshape(-1).tolist()
