"""Drawing for pictures people read: boxes with legible labels, on every supported torchvision.

The task plugins draw their validation, test and prediction pictures with these.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence

import torch

__all__ = ["draw_boxes"]


@functools.cache
def _filled_labels_supported() -> bool:
    from torchvision.utils import draw_bounding_boxes

    return "fill_labels" in inspect.signature(draw_bounding_boxes).parameters


def draw_boxes(image: torch.Tensor, boxes: torch.Tensor, labels: Sequence[str] | None, color: str, width: int = 2) -> torch.Tensor:
    """uint8 ``[3,H,W]`` with xyxy ``boxes`` outlined in ``color`` and their ``labels`` written on them.

    Labels are white on a band of the box's colour where torchvision can (0.23 and
    later), else in the box's colour.
    """
    from torchvision.utils import draw_bounding_boxes

    if not len(boxes):
        return image
    options = {"label_colors": "white", "fill_labels": True} if _filled_labels_supported() else {}
    return draw_bounding_boxes(image, boxes.float(), labels=list(labels) if labels is not None else None, colors=color, width=width, **options)
