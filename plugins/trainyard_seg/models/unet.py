"""U-Net: an encoder-decoder with skip connections (Ronneberger et al., 2015)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from trainyard_seg.models.segmentor import Segmentor


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "BN":
        return nn.BatchNorm2d(channels)
    if kind == "GN":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"UNet norm must be 'BN', 'GN' or 'none', got {kind!r}")


class _DoubleConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, norm: str) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=norm == "none"), _norm(norm, out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=norm == "none"), _norm(norm, out_channels), nn.ReLU(inplace=True),
        )


class UNet(Segmentor):
    """U-Net with ``depth`` down/up stages; channels double at each stage from ``base_channels``.

    Args:
        num_classes: output classes (the ignore index 255 is not one of them).
        in_channels: input image channels.
        base_channels: channels of the first stage.
        depth: number of downsampling stages (input sides should divide by ``2**depth``;
            other sizes work, the decoder resizes to match).
        norm: ``'BN'``, ``'GN'`` or ``'none'``.
        dice_weight: weight of a Dice loss term added to cross-entropy (0: off).
        data_preprocessor: ``dict(mean=..., std=...)`` for :class:`trainyard.ImageDataPreprocessor`.
        test_cfg: ``dict(mode='slide', crop_size=(h, w), stride=(h, w))`` for sliding-window
            inference (default: the whole image).
    """

    def __init__(self, num_classes: int, in_channels: int = 3, base_channels: int = 32, depth: int = 4,
                 norm: str = "BN", dice_weight: float = 0.0, data_preprocessor: dict | None = None,
                 test_cfg: dict | None = None) -> None:
        super().__init__(num_classes, data_preprocessor=data_preprocessor, dice_weight=dice_weight, test_cfg=test_cfg)
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.encoder = nn.ModuleList([_DoubleConv(in_channels, widths[0], norm)])
        self.encoder.extend(_DoubleConv(widths[i], widths[i + 1], norm) for i in range(depth))
        self.upsample = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth)))
        self.decoder = nn.ModuleList(_DoubleConv(2 * widths[i], widths[i], norm) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.min_input_size = 2**depth
        """Each stage halves the image: a smaller side cannot be pooled (the Predictor pads up to it)."""

    def logits(self, inputs):
        skips = []
        x = inputs
        for index, stage in enumerate(self.encoder):
            x = stage(x if index == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for upsample, stage in zip(self.upsample, self.decoder):
            skip = skips.pop()
            x = upsample(x)
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = stage(torch.cat([skip, x], dim=1))
        return {"out": self.head(x)}
