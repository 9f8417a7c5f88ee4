"""Detection's part of inference: boxes, labels and scores in original pixels, drawn on the image."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from trainyard.inference import Task
from trainyard_det.visualization import draw_detections


class DetTask(Task):
    """Results: ``boxes`` (float ``[N,4]``, xyxy in the original image's pixels), ``scores``,
    ``labels`` (int64) and ``classes`` (names), for detections scoring at least ``score_thr``."""

    output_names = ("boxes", "scores", "labels")
    dynamic_image_size = False

    def predict(self, model: torch.nn.Module, batch: dict[str, Any], score_thr: float = 0.3, **options: Any) -> list[dict[str, Any]]:
        results = []
        for output in model(batch, mode="predict"):
            keep = output["scores"] >= score_thr
            labels = output["labels"][keep].cpu()
            results.append({
                "boxes": output["boxes"][keep].float().cpu(),
                "scores": output["scores"][keep].float().cpu(),
                "labels": labels,
                "classes": [self.class_name(int(label)) for label in labels],
            })
        return results

    def record(self, result: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "boxes": [[round(v, 2) for v in box] for box in result["boxes"].tolist()],
            "scores": [round(s, 4) for s in result["scores"].tolist()],
            "labels": result["labels"].tolist(),
            "classes": list(result["classes"]),
        }

    def draw(self, image: torch.Tensor, result: Mapping[str, Any], **options: Any) -> torch.Tensor:
        return draw_detections(image, result, None, self.classes, score_thr=0.0)

    def export_outputs(self, model: torch.nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The first image's detections (torchvision detectors take a list of images)."""
        offset = 1 if getattr(model, "adds_background", False) else 0
        output = model.net(list(inputs))[0]
        return output["boxes"], output["scores"], output["labels"] - offset
