"""The base of the task plugins' picture hooks: when to draw, and where the picture goes."""

from __future__ import annotations

from typing import Any

import torch

from trainyard.hooks.hook import Hook


class VisualizationHook(Hook):
    """Every ``interval`` validation and test batches, on rank 0, one picture of the batch.

    A subclass implements :meth:`draw`. The picture goes to TensorBoard
    (``<split>/<picture_name>_<batch>``) and to the run's ``vis/`` folder
    (``<split>_<picture_name>_<batch>_iter<N>.png``); a standalone ``trainyard test``
    writes to its ``<timestamp>_test/`` folder.

    Args:
        interval: batches between pictures (batch 0 is always drawn).
    """

    priority = "LOW"
    picture_name = "predictions"

    def __init__(self, interval: int = 50) -> None:
        self.interval = interval

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._write(runner, "val", batch_idx, data_batch, outputs)

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._write(runner, "test", batch_idx, data_batch, outputs)

    def _write(self, runner: Any, split: str, batch_idx: int, data_batch: Any, outputs: Any) -> None:
        if runner.rank != 0 or batch_idx % self.interval:
            return
        picture = self.draw(runner.dataloader(split).dataset, data_batch, outputs)
        if picture is not None:
            runner.writer.add_picture(f"{split}/{self.picture_name}_{batch_idx}", picture, runner.iter)

    def draw(self, dataset: Any, data_batch: Any, outputs: Any) -> torch.Tensor | None:
        """A uint8 ``[3,H,W]`` picture of a batch and the model's predictions, or None to skip it."""
        raise NotImplementedError
