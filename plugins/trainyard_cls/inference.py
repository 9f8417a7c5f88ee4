"""Classification's part of inference: the class, the top-k scores, a caption on the image."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from trainyard.drawing import caption, enlarge
from trainyard.inference import Task


class ClsTask(Task):
    """Results: ``label`` and ``class`` (the top class), ``score`` (its softmax probability)
    and ``topk``: the ``topk`` best as ``{'label', 'class', 'score'}``, best first."""

    output_names = ("logits",)

    def predict(self, model: torch.nn.Module, batch: dict[str, Any], topk: int = 5, **options: Any) -> list[dict[str, Any]]:
        return self.results(model(batch, mode="predict"), batch, topk=topk)

    def results(self, outputs: Any, batch: Mapping[str, Any], topk: int = 5, **options: Any) -> list[dict[str, Any]]:
        scores = outputs.float().softmax(dim=1)
        values, labels = scores.topk(min(topk, scores.shape[1]), dim=1)
        results = []
        for row_values, row_labels in zip(values.tolist(), labels.tolist()):
            best = [{"label": label, "class": self.class_name(label), "score": value} for value, label in zip(row_values, row_labels)]
            results.append({"label": best[0]["label"], "class": best[0]["class"], "score": best[0]["score"], "topk": best})
        return results

    def record(self, result: Mapping[str, Any]) -> dict[str, Any]:
        return {key: result[key] for key in ("label", "class", "score", "topk")}

    def draw(self, image: torch.Tensor, result: Mapping[str, Any], lines: int = 3, **options: Any) -> torch.Tensor:
        """The image (enlarged to 256 px when smaller) with its best classes and scores written on it."""
        text = [f"{entry['class']}: {entry['score']:.2f}" for entry in result["topk"][:lines]]
        return caption(enlarge(image, 256), text)

    def draw_target(self, image: torch.Tensor, target: Any, lines: int = 3, **options: Any) -> torch.Tensor:
        """The image with its class; a mixed (soft) target lists its classes with their weights."""
        target = torch.as_tensor(target).cpu()
        if target.dim() == 0:
            text = [self.class_name(int(target))]
        else:
            weights, labels = target.float().topk(min(lines, target.numel()))
            text = [f"{self.class_name(int(label))}: {float(weight):.2f}" for weight, label in zip(weights, labels) if weight >= 0.005]
        return caption(enlarge(image, 256), text)
