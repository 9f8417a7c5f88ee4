"""Segmentation's test-time augmentation: each view's probabilities, flipped and resized back, averaged."""

from __future__ import annotations

from typing import Any

import torch

from trainyard.tta import BaseTTAModel, View, mean_probabilities_as_logits
from trainyard_seg.models.segmentor import label_map, resize_logits


class SegTTAModel(BaseTTAModel):
    """Averages the per-pixel class probabilities of every view (mmseg's ``SegTTAModel``).

    Each view's logits are resized to the unaugmented input, mirrored back when the
    view was flipped, and turned into probabilities; the average is returned as
    logits (its log) by ``mode='tensor'`` and as label maps at each image's original
    size by ``mode='predict'``. The module's ``test_cfg`` (``mode='slide'``) applies
    to every view.
    """

    task = "segmentation"
    expected_output = "[B,K,H,W] logits"

    def output_fits(self, output: Any) -> bool:
        return isinstance(output, torch.Tensor) and output.dim() == 4

    def predict_view(self, view_batch: dict[str, Any], view: View, batch: dict[str, Any], mode: str) -> torch.Tensor:
        logits = resize_logits(self.module_output(view_batch, "tensor").float(), tuple(batch["inputs"].shape[-2:]))
        if view.flip:
            logits = logits.flip(-1)
        return logits.softmax(dim=1)

    def merge(self, predictions: list[torch.Tensor], batch: dict[str, Any], mode: str) -> Any:
        logits = mean_probabilities_as_logits(predictions)
        if mode == "tensor":
            return logits
        predict = getattr(self.module, "predict", None)
        if predict is not None:
            return predict(logits, batch)
        sizes = [tuple((meta or {}).get("ori_size", logits.shape[-2:])) for meta in batch.get("meta") or [{}] * len(logits)]
        return [label_map(resize_logits(logits[i : i + 1], size))[0] for i, size in enumerate(sizes)]
