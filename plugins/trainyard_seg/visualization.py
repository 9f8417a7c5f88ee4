"""Pictures of segmentations people can read, for validation, test and predict alike.

Each sample is a row of titled panels: the input, the ground truth and the
prediction as colour overlays, and the errors (wrong pixels in red on a dimmed
image); small images are enlarged, and a legend names the classes shown in the
dataset's palette.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from trainyard.deprecation import renamed_argument
from trainyard.drawing import below, enlarge, grid, legend, titled
from trainyard.hooks import VisualizationHook
from trainyard_seg import IGNORE_INDEX
from trainyard_seg.datasets.base import default_palette

_WRONG = torch.tensor([230, 30, 30], dtype=torch.uint8)


def colorize(label_map: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """uint8 ``[3,H,W]`` colours of an ``[H,W]`` label map; ignored pixels are white."""
    table = torch.cat([palette, torch.full((256 - len(palette), 3), 255, dtype=torch.uint8)]) if len(palette) < 256 else palette
    return table[label_map.long().clamp(0, 255)].permute(2, 0, 1)


def overlay(image: torch.Tensor, label_map: torch.Tensor, palette: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    colours = colorize(label_map, palette).float()
    blended = image.float() * (1 - alpha) + colours * alpha
    blended = torch.where((label_map == IGNORE_INDEX).unsqueeze(0), image.float(), blended)
    return blended.round().clamp(0, 255).to(torch.uint8)


def errors(image: torch.Tensor, truth: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """The image dimmed to grey, with every wrongly predicted (labelled) pixel in red."""
    grey = (image.float().mean(dim=0, keepdim=True) * 0.5 + 64).expand(3, -1, -1)
    wrong = (prediction != truth) & (truth != IGNORE_INDEX)
    return torch.where(wrong.unsqueeze(0), _WRONG.view(3, 1, 1).float(), grey).round().to(torch.uint8)


def seg_picture(samples: Sequence[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]], classes: Sequence[str],
                palette: Sequence[Sequence[int]] | None = None, alpha: float = 0.5, min_side: int = 192) -> torch.Tensor:
    """uint8 ``[3,H,W]``: a row per ``(image, truth or None, prediction)`` sample, and a legend of the classes shown.

    Rows with a truth show input | ground truth | prediction | errors (with the
    share of wrong pixels); rows without show input | prediction.
    """
    colours = torch.tensor(list(palette) if palette else default_palette(max(len(classes), 1)), dtype=torch.uint8)
    rows, shown = [], set()
    for image, truth, prediction in samples:
        if prediction.shape[-2:] != image.shape[-2:]:
            continue  # a prediction that is not at the image's size cannot be drawn on it
        shown |= _classes_in(prediction) | (_classes_in(truth) if truth is not None else set())
        image = enlarge(image, min_side)
        prediction = enlarge(prediction, min_side, nearest=True)
        row = [titled(image, "input")]
        if truth is not None:
            truth = enlarge(truth, min_side, nearest=True)
            labelled = truth != IGNORE_INDEX
            wrong = float(((prediction != truth) & labelled).sum() / labelled.sum().clamp(min=1))
            row.append(titled(overlay(image, truth, colours, alpha), "ground truth"))
        row.append(titled(overlay(image, prediction, colours, alpha), "prediction"))
        if truth is not None:
            row.append(titled(errors(image, truth, prediction), f"errors ({100 * wrong:.1f}% wrong)"))
        rows.append(row)
    if not rows:
        raise ValueError("no sample could be drawn: predictions must be label maps at their image's size")
    picture = grid(rows)
    entries = [(str(classes[i]) if i < len(classes) else str(i), colours[i].tolist() if i < len(colours) else (255, 255, 255))
               for i in sorted(shown) if i != IGNORE_INDEX]
    return below(picture, legend(entries, picture.shape[-1])) if entries else picture


def _classes_in(label_map: torch.Tensor) -> set[int]:
    """The values in a label map (a count per value is much faster than ``unique``'s sort)."""
    return set(torch.bincount(label_map.flatten().long().clamp(0, 255), minlength=256).nonzero().flatten().tolist())


class SegVisualizationHook(VisualizationHook):
    """Every ``interval`` validation (and test) batches, one picture of up to ``max_images`` of its samples.

    Written to TensorBoard (``val/predictions_<batch>``) and the run's ``vis/`` folder
    (``val_predictions_<batch>_iter<N>.png``; ``test_...`` for a test run), coloured
    with the dataset's palette (see :func:`seg_picture`).

    Args:
        interval: batches between pictures (batch 0 is always drawn).
        alpha: opacity of the colour overlays.
        max_images: images (rows) per picture.
        max_samples: the old name of ``max_images``, deprecated.
    """

    def __init__(self, interval: int = 50, alpha: float = 0.5, max_images: int = 4, max_samples: int | None = None) -> None:
        super().__init__(interval)
        if max_samples is not None:
            max_images = renamed_argument(type(self).__name__, "max_samples", "max_images", max_samples)
        self.alpha = alpha
        self.max_images = max_images

    def draw(self, dataset: Any, data_batch: Any, outputs: Any) -> torch.Tensor | None:
        samples = []
        for index in range(min(self.max_images, len(outputs))):
            image = data_batch["inputs"][index].cpu()
            target = data_batch["targets"][index].cpu() if "targets" in data_batch else None
            prediction = outputs[index].cpu()
            if image.dtype == torch.uint8 and (target is None or prediction.shape == target.shape):
                samples.append((image, target, prediction))
        if not samples:
            return None
        return seg_picture(samples, list(getattr(dataset, "classes", ()) or ()), getattr(dataset, "palette", None), self.alpha)
