"""Sliding-window inference: a large image evaluated in crops of the training size, as mmseg's ``mode='slide'``.

``model.test_cfg=dict(mode='slide', crop_size=(h, w), stride=(sh, sw))`` on a
segmentor makes its ``predict`` and ``tensor`` modes run the network on windows of
``crop_size`` placed every ``stride`` pixels (the last row and column of windows
moved back to end at the image's border), and add up each window's logits into an
image-sized tensor, divided by how many windows covered each pixel. The network
sees one window at a time, so its activations take one window's memory, whatever
the image size; the image-sized sum takes ``K x H x W`` floats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.nn import functional as F

from trainyard import ConfigError

__all__ = ["check_test_cfg", "window_starts", "slide_logits"]

TEST_MODES = ("whole", "slide")


def _pair(value: Any, key: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        raise ConfigError(f"model.test_cfg.{key} must be (height, width) in pixels, two positive integers, got {value!r}")
    return int(value[0]), int(value[1])


def check_test_cfg(test_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """``model.test_cfg`` checked and completed: ``mode`` is ``'whole'`` (default) or ``'slide'`` with pairs of ints.

    A stride larger than the crop would leave pixels no window covers, so it is refused.
    """
    options = dict(test_cfg or {})
    mode = options.pop("mode", "whole")
    if mode not in TEST_MODES:
        raise ConfigError(f"model.test_cfg.mode must be 'whole' or 'slide', got {mode!r}")
    if mode == "whole":
        if options:
            raise ConfigError(f"model.test_cfg: {sorted(options)} apply to mode='slide' only; with mode='whole' give no other key")
        return {"mode": "whole"}
    unknown = sorted(set(options) - {"crop_size", "stride"})
    missing = [key for key in ("crop_size", "stride") if key not in options]
    if unknown or missing:
        raise ConfigError(f"model.test_cfg with mode='slide' takes crop_size=(h, w) and stride=(h, w)"
                          + (f"; unknown: {unknown}" if unknown else "") + (f"; missing: {missing}" if missing else ""))
    crop_size, stride = _pair(options["crop_size"], "crop_size"), _pair(options["stride"], "stride")
    if stride[0] > crop_size[0] or stride[1] > crop_size[1]:
        raise ConfigError(f"model.test_cfg.stride {stride} is larger than crop_size {crop_size}: pixels between the windows "
                          "would get no prediction; use a stride at most the crop size (mmseg uses about 2/3 of it)")
    return {"mode": "slide", "crop_size": crop_size, "stride": stride}


def window_starts(length: int, crop: int, stride: int) -> list[int]:
    """First pixel of each window along one side; the last window ends at the border (mmseg's grid)."""
    count = max(length - crop + stride - 1, 0) // stride + 1
    return [max(min(index * stride + crop, length) - crop, 0) for index in range(count)]


def _first_window(network: Callable[[torch.Tensor], torch.Tensor], crop: torch.Tensor, crop_size: tuple[int, int]) -> torch.Tensor:
    """The first window's logits; a network that cannot run on a window of ``crop_size`` is one line naming it.

    A crop smaller than the network's total downsampling (16 for a U-Net of depth 4)
    cannot be pooled down to its deepest stage: the whole image would run, the windows do not.
    """
    try:
        return network(crop)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"model.test_cfg.crop_size {crop_size} is too small for the network ({reason}): give a crop of at least "
                          "the network's total downsampling factor in each side (e.g. the training crop size)") from None


def slide_logits(network: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, num_classes: int,
                 crop_size: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """``[B,K,H,W]`` logits of ``inputs`` ``[B,C,H,W]``: each window's, summed, divided by the windows covering each pixel.

    ``network(crop)`` returns ``[B,K,h,w]`` logits, resized here to the crop when
    smaller (bilinear). An image side shorter than the crop is padded with 0 (the mean
    colour after normalisation) at the bottom and right up to it, and the padded part
    of the logits dropped, as mmseg pads test images to the crop size.
    """
    batch, _, height, width = inputs.shape
    crop_height, crop_width = crop_size
    total = inputs.new_zeros((batch, num_classes, height, width), dtype=torch.float32)
    counts = inputs.new_zeros((1, 1, height, width), dtype=torch.float32)
    for top in window_starts(height, crop_height, stride[0]):
        for left in window_starts(width, crop_width, stride[1]):
            crop = inputs[:, :, top : top + crop_height, left : left + crop_width]
            rows, columns = crop.shape[-2:]
            if (rows, columns) != (crop_height, crop_width):
                crop = F.pad(crop, (0, crop_width - columns, 0, crop_height - rows))
            logits = _first_window(network, crop, crop_size) if top == left == 0 else network(crop)
            if tuple(logits.shape[-2:]) != (crop_height, crop_width):
                logits = F.interpolate(logits, size=(crop_height, crop_width), mode="bilinear", align_corners=False)
            total[:, :, top : top + rows, left : left + columns] += logits[:, :, :rows, :columns].float()
            counts[:, :, top : top + rows, left : left + columns] += 1
    return total / counts
