"""Detection's part of inference: boxes, labels and scores in original pixels, drawn on the image."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from trainyard.inference import Task
from trainyard_det.metrics import coco_detections
from trainyard_det.visualization import draw_detections


class DetTask(Task):
    """Results: ``boxes`` (float ``[N,4]``, xyxy in the original image's pixels), ``scores``,
    ``labels`` (int64) and ``classes`` (names), for detections scoring at least ``score_thr``."""

    output_names = ("boxes", "scores", "labels")
    dynamic_image_size = False

    def predict(self, model: torch.nn.Module, batch: dict[str, Any], score_thr: float = 0.3, **options: Any) -> list[dict[str, Any]]:
        return self.results(model(batch, mode="predict"), batch, score_thr=score_thr)

    def results(self, outputs: Any, batch: Mapping[str, Any], score_thr: float = 0.0, **options: Any) -> list[dict[str, Any]]:
        """Every detection by default: a COCO result file keeps them all, as the metric evaluates them."""
        results = []
        for output in outputs:
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

    def draw(self, image: torch.Tensor, result: Mapping[str, Any], score_thr: float = 0.0, **options: Any) -> torch.Tensor:
        return draw_detections(image, result, None, self.classes, score_thr=score_thr)

    def draw_target(self, image: torch.Tensor, target: Any, **options: Any) -> torch.Tensor:
        """The image with its ground-truth boxes (in the image's own pixels) in their class's colour, and a legend."""
        from trainyard.drawing import below
        from trainyard_det.visualization import class_legend, detection_panels

        nothing = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
        truth = {"boxes": target["boxes"].cpu(), "labels": target["labels"].cpu()}
        (picture, _), shown = detection_panels(image, nothing, truth, self.classes, score_thr=0.0)
        return below(picture, class_legend(shown, self.classes, picture.shape[-1])) if shown else picture

    def result_record(self, result: Mapping[str, Any], meta: Mapping[str, Any], folder: Path, stem: str) -> dict[str, Any]:
        """The image's detections as COCO results: its original image id, the dataset's category ids, xywh boxes."""
        category_ids = list(self.metainfo.get("category_ids") or range(len(self.classes)))
        return {"index": meta.get("index"), "detections": coco_detections(result, meta["image_id"], category_ids)}

    def write_result_file(self, records: Sequence[Mapping[str, Any]], folder: Path) -> Path:
        """``results.bbox.json``: the COCO results list that ``COCO.loadRes`` reads (and COCO's test-dev server takes)."""
        path = folder / "results.bbox.json"
        path.write_text(json.dumps([detection for record in records for detection in record["detections"]]), encoding="utf-8")
        return path

    def export_outputs(self, model: torch.nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The first image's detections (torchvision detectors take a list of images)."""
        offset = 1 if getattr(model, "adds_background", False) else 0
        output = model.net(list(inputs))[0]
        return output["boxes"], output["scores"], output["labels"] - offset
