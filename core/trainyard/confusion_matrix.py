"""Confusion matrices as pictures people read, for every task (matplotlib, headless).

Classification counts images, segmentation pixels, detection boxes (with a
background row and column); all are drawn the same way: rows are the true
classes, columns the predicted ones, the colour is the share of the row, and the
text is the count or that share.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["draw_confusion_matrix"]

_MAX_TEXT_CLASSES = 30
"""Beyond this many rows or columns the cells carry no text: it would not be readable."""


def draw_confusion_matrix(confusion: torch.Tensor, true_names: Sequence[str], predicted_names: Sequence[str] | None = None,
                          text: str = "count", title: str | None = None, unit: str = "images") -> torch.Tensor:
    """uint8 ``[3,H,W]`` of ``confusion`` (rows: true classes, columns: predicted classes).

    Args:
        confusion: counts ``[R,C]``.
        true_names, predicted_names: the row and column names (columns default to the rows').
        text: what each cell says: ``'count'`` or ``'percent'`` (its share of the row, for pixel counts too large to read).
        title: the picture's title (default: ``confusion matrix (<total> <unit>)``).
        unit: what is counted, for the default title and the colour bar.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if text not in ("count", "percent"):
        raise ValueError(f"draw_confusion_matrix: text must be 'count' or 'percent', got {text!r}")
    predicted_names = list(predicted_names) if predicted_names is not None else list(true_names)
    counts = confusion.detach().cpu().double()
    shares = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    size = min(3 + 0.45 * max(len(true_names), len(predicted_names)), 20)
    figure = Figure(figsize=(size + 1.5, size), dpi=100)
    canvas = FigureCanvasAgg(figure)  # headless: no display, no global backend switch
    axes = figure.add_subplot()
    shown = axes.imshow(shares.numpy(), cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04, label=f"share of the true class's {unit}")
    axes.set_xticks(range(len(predicted_names)), labels=predicted_names, rotation=45, ha="right")
    axes.set_yticks(range(len(true_names)), labels=list(true_names))
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if max(len(true_names), len(predicted_names)) <= _MAX_TEXT_CLASSES:
        for row in range(len(true_names)):
            for column in range(len(predicted_names)):
                share = float(shares[row, column])
                label = str(int(counts[row, column])) if text == "count" else (f"{100 * share:.0f}" if share else "0")
                axes.text(column, row, label, ha="center", va="center", color="white" if share > 0.5 else "black", fontsize=8)
    axes.set_title(title or f"confusion matrix ({int(counts.sum())} {unit})")
    figure.tight_layout()
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    return torch.from_numpy(pixels).permute(2, 0, 1)
