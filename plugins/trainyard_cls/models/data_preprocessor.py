"""Moves a classification batch to the device, normalises it, and mixes it in training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trainyard import ImageDataPreprocessor
from trainyard_cls.transforms import build_batch_augments


class ClsDataPreprocessor(ImageDataPreprocessor):
    """Normalise on the device; in training, apply one of ``batch_augments`` (MixUp, CutMix).

    Mixed batches carry soft targets ``[B, K]`` (float) instead of class indices; the
    classifier's loss takes both. Evaluation batches are never mixed.
    """

    def __init__(self, num_classes: int, mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 batch_augments: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(mean, std)
        self.batch_augment = build_batch_augments(batch_augments, num_classes)

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        batch = super().forward(batch)
        if self.training and self.batch_augment is not None and "targets" in batch:
            batch["inputs"], batch["targets"] = self.batch_augment(batch["inputs"], batch["targets"])
        return batch
