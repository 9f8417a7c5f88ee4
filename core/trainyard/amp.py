"""Automatic mixed precision helpers shared by training, evaluation and prediction.

Both :mod:`trainyard.loops` and :mod:`trainyard.inference` run models under autocast;
the helpers live here so that the training loop does not depend on the prediction
module (and the other way round).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["autocast_context", "default_amp_dtype"]


def default_amp_dtype(device: torch.device) -> torch.dtype:
    """The autocast dtype used when none is named: float16 on CUDA, bfloat16 elsewhere (the CPU has no float16 kernels worth using)."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def autocast_context(device: torch.device, enabled: bool, dtype: torch.dtype | None = None) -> Any:
    """Autocast for a forward pass: :func:`default_amp_dtype` unless ``dtype`` says otherwise; a disabled context when not ``enabled``."""
    if not enabled:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype or default_amp_dtype(device))
