"""A small backbone for detectors trained from scratch on the CPU (tests, the generated shapes)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class SmallDetBackbone(nn.Module):
    """Four conv-BN-ReLU stages with stride 2 each; one feature map ``'0'`` at stride 8 or 16.

    Follows torchvision's backbone contract (``out_channels``; returns an ordered dict
    of feature maps), so any torchvision detector takes it, and so can a plugin's own
    backbone registered in ``MODELS``.

    Args:
        channels: width of each stage.
        stride: 8 or 16, the stride of the returned feature map.
    """

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128, 128), stride: int = 8) -> None:
        super().__init__()
        stages = {8: 3, 16: 4}.get(stride)
        if stages is None or len(channels) < stages:
            raise ValueError(f"SmallDetBackbone: stride must be 8 or 16 with at least that many channel entries, got stride={stride}, channels={channels}")
        layers: list[nn.Module] = []
        in_channels = 3
        for index, width in enumerate(channels):
            step = 2 if index < stages else 1
            layers += [nn.Conv2d(in_channels, width, 3, stride=step, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            in_channels = width
        self.body = nn.Sequential(*layers)
        self.out_channels = in_channels
        self.featmap_names = ["0"]

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict([("0", self.body(images))])
