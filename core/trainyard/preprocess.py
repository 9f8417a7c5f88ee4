"""Moves an image batch to the model's device and normalises it there."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from trainyard.data import to_device

__all__ = ["ImageDataPreprocessor"]


class ImageDataPreprocessor(nn.Module):
    """uint8 images -> normalised float on the model's device; targets moved along.

    ``inputs`` is a ``[B,3,H,W]`` tensor or a list of ``[3,Hi,Wi]`` images (detection).
    Normalising on the device keeps the data workers' output small (uint8) and the
    arithmetic on the GPU when there is one. The defaults are ImageNet's mean and
    standard deviation on the 0-255 scale.
    """

    def __init__(self, mean: Sequence[float] = (123.675, 116.28, 103.53), std: Sequence[float] = (58.395, 57.12, 57.375)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1), persistent=False)

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        batch = to_device(batch, self.mean.device)
        inputs = batch["inputs"]
        if isinstance(inputs, torch.Tensor):
            batch["inputs"] = (inputs.float() - self.mean) / self.std
        else:
            batch["inputs"] = [(image.float() - self.mean) / self.std for image in inputs]
        return batch
