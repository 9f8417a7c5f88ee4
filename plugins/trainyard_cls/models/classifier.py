"""An image classifier: a backbone that maps images to logits, a loss, and predictions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from trainyard import MODELS, load_pretrained_weights
from trainyard.checkpoint import DEFAULT_REVISE_KEYS
from trainyard.registry import building
from trainyard_cls.models.data_preprocessor import ClsDataPreprocessor


class ImageClassifier(nn.Module):
    """``backbone`` (from ``MODELS``, given ``num_classes``) -> logits ``[B, K]``.

    ``forward(batch, mode='loss')`` returns ``loss_cls``: cross-entropy with
    ``label_smoothing``, on class indices ``[B]`` or soft targets ``[B, K]`` (MixUp,
    CutMix). ``mode='predict'`` returns the logits, which metrics read.

    Args:
        backbone: ``dict(type='TorchvisionBackbone', name='resnet18')``,
            ``dict(type='TimmBackbone', name='convnext_nano')``, ``dict(type='SmallCNN')``
            or any ``MODELS`` entry that takes ``num_classes`` and returns logits.
        num_classes: output classes.
        checkpoint: a local weights file to start from (torchvision, timm or trainyard):
            keys whose shape differs (the head, for another class count) keep their
            fresh initialisation and are reported by key. Nothing is downloaded.
        label_smoothing: as in ``torch.nn.functional.cross_entropy``.
        data_preprocessor: ``dict(mean=..., std=..., batch_augments=[...])``.
    """

    task = "classification"
    """The name of this model's :class:`trainyard.inference.Task` in ``TASKS`` (predict, export)."""
    default_tta_model = "ClsTTAModel"
    """What ``--tta`` wraps the model in when the config has no ``tta_model`` (see :mod:`trainyard.tta`)."""

    def __init__(self, backbone: Mapping[str, Any], num_classes: int, checkpoint: str | None = None,
                 label_smoothing: float = 0.0, data_preprocessor: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        with building("model.backbone"):
            self.backbone = MODELS.build(backbone, num_classes=num_classes)
        with building("model.data_preprocessor"):
            self.data_preprocessor = ClsDataPreprocessor(num_classes, **(data_preprocessor or {}))
        if checkpoint:
            self.load_checkpoint(checkpoint)

    def load_checkpoint(self, path: str) -> list[str]:
        """Start from a local file: the zoo model's own state dict (torchvision, timm), or a
        trainyard classifier's (``backbone.`` and ``net.`` prefixes are dropped).
        Returns the keys skipped for their shape."""
        target = getattr(self.backbone, "net", self.backbone)  # the zoo model inside a zoo backbone
        rules = [*DEFAULT_REVISE_KEYS, (r"^backbone\.", "")]
        if target is not self.backbone:
            rules.append((r"^net\.", ""))
        return load_pretrained_weights(target, path, revise_keys=rules)

    def forward(self, batch: dict[str, Any], mode: str = "loss") -> Any:
        logits = self.backbone(batch["inputs"])
        if mode == "loss":
            return {"loss_cls": self.loss(logits, batch["targets"])}
        if mode in ("predict", "tensor"):
            return logits
        raise ValueError(f"unknown mode {mode!r}; use 'loss', 'predict' or 'tensor'")

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
