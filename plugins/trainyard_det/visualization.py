"""Pictures of detections during validation: ground truth and predicted boxes on the image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from trainyard.deprecation import renamed_argument
from trainyard.drawing import draw_boxes, grid
from trainyard.hooks import VisualizationHook

_TRUTH, _PREDICTION = "#2ca02c", "#ff7f0e"


def draw_detections(image: torch.Tensor, prediction: Mapping[str, torch.Tensor], truth: Mapping[str, torch.Tensor] | None,
                    class_names: Sequence[str], score_thr: float = 0.3, scale: tuple[float, float] = (1.0, 1.0),
                    min_side: int = 384) -> torch.Tensor:
    """uint8 ``[3,H,W]``: ground truth in green (class name), predictions above the threshold in orange (name: score).

    ``scale`` maps the prediction's (original-image) coordinates onto ``image``: (x factor, y factor).
    Images smaller than ``min_side`` are enlarged to it first.
    """
    from torchvision.transforms.v2 import functional as F

    def name(label: int) -> str:
        return str(class_names[label]) if 0 <= label < len(class_names) else str(label)

    enlarge = max(1.0, min_side / min(image.shape[-2:]))  # small images are enlarged so the labels stay readable
    picture = F.resize(image, [round(image.shape[-2] * enlarge), round(image.shape[-1] * enlarge)], antialias=True) if enlarge > 1 else image
    if truth is not None and len(truth["boxes"]):
        picture = draw_boxes(picture, truth["boxes"].float() * enlarge, [name(int(l)) for l in truth["labels"]], _TRUTH)
    keep = prediction["scores"] >= score_thr
    boxes = prediction["boxes"][keep].float() * torch.tensor([scale[0], scale[1]] * 2) * enlarge
    labels = [f"{name(int(l))}: {float(s):.2f}" for l, s in zip(prediction["labels"][keep], prediction["scores"][keep])]
    return draw_boxes(picture, boxes, labels, _PREDICTION)


class DetVisualizationHook(VisualizationHook):
    """Every ``interval`` validation (and test) batches, up to ``max_images`` of its images with their boxes.

    Ground truth in green, predictions with a score of at least ``score_thr`` in
    orange with their scores, small images enlarged. Written to TensorBoard
    (``val/detections_<batch>``) and the run's ``vis/`` folder (``test_...`` in a test run).

    Args:
        interval: batches between pictures (batch 0 is always drawn).
        score_thr: the lowest score drawn (as ``trainyard predict --score-thr``).
        max_images: images side by side in one picture.
        score_threshold: the old name of ``score_thr``, deprecated.
    """

    picture_name = "detections"

    def __init__(self, interval: int = 50, score_thr: float = 0.3, max_images: int = 2,
                 score_threshold: float | None = None) -> None:
        super().__init__(interval)
        if score_threshold is not None:
            score_thr = renamed_argument(type(self).__name__, "score_threshold", "score_thr", score_threshold)
        self.score_thr = score_thr
        self.max_images = max_images

    def draw(self, dataset: Any, data_batch: Any, outputs: Any) -> torch.Tensor | None:
        class_names = list(getattr(dataset, "classes", ()) or ())
        metas = data_batch.get("meta") or [{}] * len(outputs)
        targets = data_batch.get("targets") or [None] * len(outputs)
        panels = []
        for image, output, meta, truth in list(zip(data_batch["inputs"], outputs, metas, targets))[: self.max_images]:
            image = image.cpu()
            if image.dtype != torch.uint8:
                continue
            prediction = {k: v.detach().cpu() for k, v in output.items()}
            height, width = image.shape[-2:]
            original_height, original_width = meta.get("ori_size", (height, width))
            panels.append(draw_detections(image, prediction, truth, class_names, self.score_thr,
                                          scale=(width / original_width, height / original_height)))
        return grid([panels]) if panels else None
