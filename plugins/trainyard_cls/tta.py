"""Classification's test-time augmentation: the class probabilities of every view, averaged."""

from __future__ import annotations

from typing import Any

import torch

from trainyard.tta import BaseTTAModel, View, mean_probabilities_as_logits


class ClsTTAModel(BaseTTAModel):
    """Averages the softmax of every view (mmpretrain's ``AverageClsScoreTTA``).

    ``mode='predict'`` and ``'tensor'`` return ``[B,K]`` logits whose softmax is the
    average, so accuracy metrics and ``trainyard predict`` read them as a model's.
    A scaled view suits a backbone that pools globally (the ResNets, the small CNN).
    """

    task = "classification"
    expected_output = "[B,K] class logits"

    def output_fits(self, output: Any) -> bool:
        return isinstance(output, torch.Tensor) and output.dim() == 2

    def predict_view(self, view_batch: dict[str, Any], view: View, batch: dict[str, Any], mode: str) -> torch.Tensor:
        return self.module_output(view_batch, "predict").float().softmax(dim=1)

    def merge(self, predictions: list[torch.Tensor], batch: dict[str, Any], mode: str) -> torch.Tensor:
        return mean_probabilities_as_logits(predictions)
