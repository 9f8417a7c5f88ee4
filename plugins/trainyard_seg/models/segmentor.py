"""What every segmentation model shares: the loss and predictions at the original size."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from trainyard import ImageDataPreprocessor
from trainyard_seg import IGNORE_INDEX


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Soft Dice loss over the classes, ignoring ``ignore_index`` pixels."""
    valid = (targets != ignore_index).unsqueeze(1)
    probabilities = logits.softmax(dim=1) * valid
    one_hot = F.one_hot(targets.clamp(0, logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2) * valid
    intersection = (probabilities * one_hot).sum(dim=(0, 2, 3))
    total = probabilities.sum(dim=(0, 2, 3)) + one_hot.sum(dim=(0, 2, 3))
    return 1 - ((2 * intersection + 1) / (total + 1)).mean()


class Segmentor(nn.Module):
    """Base class: subclasses implement ``logits(inputs) -> {'out': [B,K,h,w], 'aux': ...}``.

    ``forward(batch, mode='loss')`` returns ``loss_ce`` (and ``loss_dice``, ``loss_aux``);
    ``mode='predict'`` returns int64 label maps at each image's original size
    (``meta['ori_size']``), stacked when all sizes agree, else a list.
    """

    def __init__(self, num_classes: int, data_preprocessor: Mapping[str, Any] | None = None,
                 dice_weight: float = 0.0, aux_weight: float = 0.4, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.data_preprocessor = ImageDataPreprocessor(**(data_preprocessor or {}))
        self.dice_weight = dice_weight
        self.aux_weight = aux_weight
        self.ignore_index = ignore_index

    def logits(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, batch: dict[str, Any], mode: str = "loss") -> Any:
        inputs = batch["inputs"]
        outputs = self.logits(inputs)
        if mode == "loss":
            return self.loss(outputs, batch["targets"])
        if mode == "predict":
            return self.predict(outputs["out"], batch)
        if mode == "tensor":
            return outputs["out"]
        raise ValueError(f"unknown mode {mode!r}; use 'loss', 'predict' or 'tensor'")

    def loss(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> dict[str, torch.Tensor]:
        size = targets.shape[-2:]
        logits = F.interpolate(outputs["out"], size=size, mode="bilinear", align_corners=False)
        losses = {"loss_ce": F.cross_entropy(logits, targets, ignore_index=self.ignore_index)}
        if self.dice_weight:
            losses["loss_dice"] = self.dice_weight * dice_loss(logits, targets, self.ignore_index)
        if "aux" in outputs and self.aux_weight:
            aux = F.interpolate(outputs["aux"], size=size, mode="bilinear", align_corners=False)
            losses["loss_aux"] = self.aux_weight * F.cross_entropy(aux, targets, ignore_index=self.ignore_index)
        return losses

    def predict(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor | list[torch.Tensor]:
        metas = batch.get("meta") or [{}] * logits.shape[0]
        sizes = [tuple(meta.get("ori_size", logits.shape[-2:])) for meta in metas]
        if len(set(sizes)) == 1:
            return F.interpolate(logits, size=sizes[0], mode="bilinear", align_corners=False).argmax(dim=1)
        return [
            F.interpolate(logits[i : i + 1], size=size, mode="bilinear", align_corners=False)[0].argmax(dim=0)
            for i, size in enumerate(sizes)
        ]
