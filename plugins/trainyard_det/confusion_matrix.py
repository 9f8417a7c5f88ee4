"""The detection confusion matrix of mmdet's ``tools/analysis_tools/confusion_matrix.py``: boxes per class, plus background."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torchvision.ops import box_iou


def _xyxy(boxes: Sequence[Sequence[float]]) -> torch.Tensor:
    xyxy = torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4)
    xyxy[:, 2:] += xyxy[:, :2]
    return xyxy


def detection_confusion_matrix(images: Sequence[Mapping[str, Any]], category_ids: Sequence[int], score_thr: float = 0.3,
                               iou_thr: float = 0.5) -> torch.Tensor:
    """int64 ``[K+1, K+1]``: rows are true classes, columns predicted ones; index ``K`` is the background.

    ``images`` hold COCO ``annotations`` and ``detections`` (xywh ``bbox``,
    ``category_id``, ``score``), as :class:`~trainyard_det.metrics.CocoMetric` keeps
    them. As mmdet's tool counts: every detection scoring at least ``score_thr`` adds
    one to ``[true, predicted]`` for each ground-truth box it overlaps with IoU of at
    least ``iou_thr`` (a hit on the diagonal when the classes agree), or to
    ``[background, predicted]`` when it overlaps none (a false positive); every
    ground-truth box that no detection of its class hit adds one to
    ``[true, background]`` (missed). Crowd boxes are not objects to find and are left out.
    """
    label_of = {category: label for label, category in enumerate(category_ids)}
    background = len(category_ids)
    confusion = torch.zeros(background + 1, background + 1, dtype=torch.int64)
    for image in images:
        truths = [a for a in image["annotations"] if not a.get("iscrowd") and a["category_id"] in label_of]
        detections = [d for d in image["detections"] if d["score"] >= score_thr]
        true_labels = torch.tensor([label_of[a["category_id"]] for a in truths], dtype=torch.int64)
        predicted = torch.tensor([label_of[d["category_id"]] for d in detections], dtype=torch.int64)
        hits = box_iou(_xyxy([d["bbox"] for d in detections]), _xyxy([a["bbox"] for a in truths])) >= iou_thr  # [D, G]
        pairs = hits.nonzero()
        confusion.index_put_((true_labels[pairs[:, 1]], predicted[pairs[:, 0]]), torch.ones(len(pairs), dtype=torch.int64),
                             accumulate=True)
        found = (hits & (predicted[:, None] == true_labels[None, :])).any(dim=0)
        confusion[:, background].index_put_((true_labels[~found],), torch.ones(int((~found).sum()), dtype=torch.int64),
                                            accumulate=True)
        unmatched = ~hits.any(dim=1)
        confusion[background].index_put_((predicted[unmatched],), torch.ones(int(unmatched.sum()), dtype=torch.int64),
                                         accumulate=True)
    return confusion
