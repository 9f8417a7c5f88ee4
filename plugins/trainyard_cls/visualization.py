"""Pictures people can read: a grid of predictions during validation, the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from trainyard.drawing import draw_boxes
from trainyard.hooks import VisualizationHook

_CORRECT, _WRONG = "#2ca02c", "#d62728"


def draw_confusion_matrix(confusion: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
    """uint8 ``[3,H,W]``: rows are true classes, columns predicted; colour is the row's share, text the count."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = confusion.double()
    shares = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    size = min(3 + 0.45 * len(class_names), 20)
    figure = Figure(figsize=(size + 1.5, size), dpi=100)
    canvas = FigureCanvasAgg(figure)  # headless: no display, no global backend switch
    axes = figure.add_subplot()
    shown = axes.imshow(shares.numpy(), cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    ticks = range(len(class_names))
    axes.set_xticks(ticks, labels=list(class_names), rotation=45, ha="right")
    axes.set_yticks(ticks, labels=list(class_names))
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if len(class_names) <= 30:
        for row in ticks:
            for column in ticks:
                colour = "white" if shares[row, column] > 0.5 else "black"
                axes.text(column, row, int(counts[row, column]), ha="center", va="center", color=colour, fontsize=8)
    axes.set_title(f"confusion matrix ({int(counts.sum())} images)")
    figure.tight_layout()
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    return torch.from_numpy(pixels).permute(2, 0, 1)


def prediction_grid(images: torch.Tensor, predicted: Sequence[int], true: Sequence[int], class_names: Sequence[str],
                    tile: int = 128, columns: int = 8) -> torch.Tensor:
    """uint8 ``[3,H,W]``: each image with a frame, green if right, red if wrong, and its predicted (true) class."""
    from torchvision.transforms.v2 import functional as F
    from torchvision.utils import make_grid

    tiles = []
    for image, guess, truth in zip(images, predicted, true):
        picture = F.resize(image, [tile, tile], antialias=True)
        right = guess == truth
        label = _name(class_names, guess) if right else f"{_name(class_names, guess)} (true: {_name(class_names, truth)})"
        frame = torch.tensor([[1, 1, tile - 2, tile - 2]], dtype=torch.float32)
        tiles.append(draw_boxes(picture, frame, [label], _CORRECT if right else _WRONG, width=3))
    return make_grid(torch.stack(tiles), nrow=columns, padding=2, pad_value=255)


def _name(class_names: Sequence[str], index: int) -> str:
    return str(class_names[index]) if 0 <= index < len(class_names) else str(index)


class ClsVisualizationHook(VisualizationHook):
    """Every ``interval`` validation (and test) batches, a grid of its images with predicted vs true class.

    Wrong predictions are framed in red with the true class in brackets. Written to
    TensorBoard (``val/predictions_<batch>``) and the run's ``vis/`` folder.

    Args:
        interval: validation batches between pictures (batch 0 is always drawn).
        max_images: images per picture.
    """

    def __init__(self, interval: int = 50, max_images: int = 16) -> None:
        super().__init__(interval)
        self.max_images = max_images

    def draw(self, dataset: Any, data_batch: Any, outputs: Any) -> torch.Tensor | None:
        images = data_batch["inputs"][: self.max_images].cpu()
        if images.dtype != torch.uint8:
            return None
        predicted = outputs[: self.max_images].argmax(dim=1).tolist()
        true = data_batch["targets"][: self.max_images].tolist()
        return prediction_grid(images, predicted, true, list(getattr(dataset, "classes", ()) or ()))
