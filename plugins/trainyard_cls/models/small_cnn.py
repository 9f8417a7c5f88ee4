"""A small convolutional network for tests and quick runs on the CPU."""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Conv-BN-ReLU blocks, each halving the resolution, then global pooling and a linear head.

    About 25k parameters with the defaults: trains on 32x32 images on a CPU in seconds.
    """

    def __init__(self, num_classes: int, channels: tuple[int, ...] = (16, 32, 64), in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for out_channels in channels:
            layers += [
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(in_channels, num_classes)
        self.min_input_size = 2 ** len(channels)
        """Each block halves the image: a smaller side cannot be pooled (the Predictor pads up to it)."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(inputs).mean(dim=(2, 3)))
