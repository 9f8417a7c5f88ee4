"""Pictures of predictions during validation: image, ground truth and prediction side by side."""

from __future__ import annotations

from typing import Any

import torch

from trainyard import Hook
from trainyard_seg import IGNORE_INDEX
from trainyard_seg.datasets.base import default_palette


def colorize(label_map: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """uint8 ``[3,H,W]`` colours of an ``[H,W]`` label map; ignored pixels are white."""
    table = torch.cat([palette, torch.full((256 - len(palette), 3), 255, dtype=torch.uint8)]) if len(palette) < 256 else palette
    return table[label_map.long().clamp(0, 255)].permute(2, 0, 1)


def overlay(image: torch.Tensor, label_map: torch.Tensor, palette: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    colours = colorize(label_map, palette).float()
    blended = image.float() * (1 - alpha) + colours * alpha
    blended = torch.where((label_map == IGNORE_INDEX).unsqueeze(0), image.float(), blended)
    return blended.round().clamp(0, 255).to(torch.uint8)


class SegVisualizationHook(Hook):
    """Every ``interval`` validation batches, one picture: image | ground truth | prediction.

    Written to TensorBoard (``val/predictions_<batch>``) and the run's ``vis/`` folder
    (``val_predictions_<batch>_iter<N>.png``), coloured with the dataset's palette.

    Args:
        interval: validation batches between pictures (batch 0 is always drawn).
        alpha: opacity of the colour overlays.
    """

    priority = "LOW"

    def __init__(self, interval: int = 50, alpha: float = 0.5) -> None:
        self.interval = interval
        self.alpha = alpha

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if runner.rank != 0 or batch_idx % self.interval:
            return
        image = data_batch["inputs"][0].cpu()
        target = data_batch["targets"][0].cpu()
        prediction = outputs[0].cpu()
        if prediction.shape != target.shape or image.dtype != torch.uint8:
            return
        palette = torch.tensor(self._palette(runner), dtype=torch.uint8)
        picture = torch.cat(
            [image, overlay(image, target, palette, self.alpha), overlay(image, prediction, palette, self.alpha)], dim=2
        )
        runner.writer.add_picture(f"val/predictions_{batch_idx}", picture, runner.iter)

    @staticmethod
    def _palette(runner: Any) -> list:
        dataset = runner.dataloader("val").dataset
        palette = getattr(dataset, "palette", None)
        return list(palette) if palette else default_palette(256)
