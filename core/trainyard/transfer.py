"""Batches bound for a GPU: stacked straight into page-locked memory, so the copy to the device runs asynchronously.

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

__all__ = ["stack_for_device"]


def stack_for_device(tensors: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """``torch.stack(tensors)``, in page-locked memory when ``device`` is a CUDA device (elsewhere a plain stack)."""
    if device.type != "cuda" or not torch.cuda.is_available() or tensors[0].device.type != "cpu":
        return torch.stack(list(tensors))
    first = tensors[0]
    out = torch.empty((len(tensors), *first.shape), dtype=first.dtype, pin_memory=True)
    return torch.stack(list(tensors), out=out)
