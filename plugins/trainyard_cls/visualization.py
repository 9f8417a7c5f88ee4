"""Pictures people can read: a grid of predictions during validation, the confusion matrix."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from trainyard.confusion_matrix import draw_confusion_matrix as trainyard_confusion_matrix
from trainyard.drawing import draw_boxes
from trainyard.hooks import VisualizationHook

_CORRECT, _WRONG = "#2ca02c", "#d62728"


def draw_confusion_matrix(confusion: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
    """uint8 ``[3,H,W]``: rows are true classes, columns predicted; colour is the row's share, text the count."""
    return trainyard_confusion_matrix(confusion, class_names, text="count", unit="images")


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
    """Each validation (and test) pass, one grid of ``max_images`` images sampled across the true classes, predicted vs true.

    The images are drawn evenly from every class (with a fixed ``seed``, so each pass
    shows the same images), not the first ones, which in a class-sorted folder would
    all be one class. Wrong predictions are framed in red with the true class in
    brackets. Written to TensorBoard (``val/predictions``) and the run's ``vis/``
    folder (``val_predictions_iter<N>.png``). Under DDP, rank 0 samples its own share.

    Args:
        max_images: images per picture.
        seed: which images are sampled.
        interval: no longer used (the grid samples the whole pass); accepted with a warning.
    """

    tile = 128

    def __init__(self, max_images: int = 16, seed: int = 0, interval: int | None = None) -> None:
        super().__init__(1)
        if interval is not None:
            logging.getLogger("trainyard").warning(
                "ClsVisualizationHook: 'interval' is no longer used: one grid per validation pass, sampled across the classes")
        self.max_images = max_images
        self.seed = seed
        self._ranks: torch.Tensor | None = None
        self._candidates: dict[int, list[tuple[int, torch.Tensor, int]]] = {}

    def before_val_epoch(self, runner: Any) -> None:
        self._start(runner, "val")

    def before_test_epoch(self, runner: Any) -> None:
        self._start(runner, "test")

    def _start(self, runner: Any, split: str) -> None:
        size = len(runner.dataloader(split).dataset)
        self._ranks = torch.randperm(size, generator=torch.Generator().manual_seed(self.seed))  # the sampling order of each index
        self._candidates = {}

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._collect(runner, batch_idx, data_batch, outputs)

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._collect(runner, batch_idx, data_batch, outputs)

    def _collect(self, runner: Any, batch_idx: int, data_batch: Any, outputs: Any) -> None:
        """Keep, per true class, the ``max_images`` images that come first in the seeded order."""
        if runner.rank != 0 or self._ranks is None or data_batch["inputs"].dtype != torch.uint8:
            return
        from torchvision.transforms.v2 import functional as F

        metas = data_batch.get("meta") or [{} for _ in outputs]
        targets = data_batch["targets"]
        true = (targets.argmax(dim=1) if targets.ndim == 2 else targets).tolist()
        predicted = outputs.argmax(dim=1).tolist()
        for position, meta in enumerate(metas):
            index = int(meta.get("index", batch_idx * len(metas) + position)) % len(self._ranks)
            kept = self._candidates.setdefault(true[position], [])
            order = int(self._ranks[index])
            if len(kept) < self.max_images or order < kept[-1][0]:
                tile = F.resize(data_batch["inputs"][position].cpu(), [self.tile, self.tile], antialias=True)
                kept.append((order, tile, predicted[position]))
                kept.sort(key=lambda item: item[0])
                del kept[self.max_images :]

    def after_val_epoch(self, runner: Any, metrics: Any = None) -> None:
        self._draw_grid(runner, "val")

    def after_test_epoch(self, runner: Any, metrics: Any = None) -> None:
        self._draw_grid(runner, "test")

    def _draw_grid(self, runner: Any, split: str) -> None:
        if runner.rank != 0 or not self._candidates:
            return
        chosen: list[tuple[int, torch.Tensor, int]] = []  # (true class, tile, predicted), round-robin over the classes
        queues = {label: list(kept) for label, kept in sorted(self._candidates.items())}
        while len(chosen) < self.max_images and any(queues.values()):
            for label, queue in queues.items():
                if queue and len(chosen) < self.max_images:
                    _, tile, guess = queue.pop(0)
                    chosen.append((label, tile, guess))
        chosen.sort(key=lambda item: item[0])
        classes = list(getattr(runner.dataloader(split).dataset, "classes", ()) or ())
        picture = prediction_grid(torch.stack([tile for _, tile, _ in chosen]), [guess for _, _, guess in chosen],
                                  [label for label, _, _ in chosen], classes, tile=self.tile)
        runner.writer.add_picture(f"{split}/{self.picture_name}", picture, runner.iter)
        self._candidates = {}
