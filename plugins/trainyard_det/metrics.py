"""COCO box mAP through pycocotools' ``COCOeval``, on detections gathered from every rank."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from trainyard import ConfigError, GatherMetric, ModelContractError

logger = logging.getLogger("trainyard")

STAT_NAMES = ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l",
              "bbox_AR_1", "bbox_AR_10", "bbox_AR_100", "bbox_AR_s", "bbox_AR_m", "bbox_AR_l")
"""The twelve numbers of ``COCOeval.summarize()``, in its order."""


def _evaluator_classes(backend: str) -> tuple[Any, Any]:
    if backend == "pycocotools":
        try:
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval
        except ImportError:
            raise ConfigError("CocoMetric needs pycocotools, a dependency of trainyard: pip install pycocotools") from None
        return COCO, COCOeval
    if backend == "faster_coco_eval":
        try:
            from faster_coco_eval import COCO, COCOeval_faster
        except ImportError:
            raise ConfigError(
                "CocoMetric(backend='faster_coco_eval') needs faster-coco-eval: pip install 'trainyard[det]' (or pip install faster-coco-eval)"
            ) from None
        return COCO, COCOeval_faster
    raise ConfigError(f"CocoMetric: unknown backend {backend!r}; use 'pycocotools' or 'faster_coco_eval'")


def coco_detections(prediction: dict[str, Any], image_id: Any, category_ids: Sequence[int]) -> list[dict[str, Any]]:
    """One image's detections (xyxy ``boxes``, ``scores``, ``labels``) as COCO results: xywh boxes, the dataset's category ids."""
    boxes = prediction["boxes"].detach().cpu().double().reshape(-1, 4)
    xywh = boxes.clone()
    xywh[:, 2:] -= xywh[:, :2]
    labels = prediction["labels"].cpu().tolist()
    if any(not 0 <= label < len(category_ids) for label in labels):
        raise ModelContractError(f"CocoMetric: predicted labels {sorted(set(labels))} outside the {len(category_ids)} classes")
    return [{"image_id": image_id, "category_id": category_ids[label], "bbox": box, "score": score}
            for box, score, label in zip(xywh.tolist(), prediction["scores"].detach().cpu().double().tolist(), labels)]


class CocoMetric(GatherMetric):
    """bbox mAP, AP50, AP75, AP small/medium/large and AR@1/10/100 (fractions), as COCO computes them.

    Each rank keeps, per image, its detections and its original annotations (from
    ``meta['annotations']``: crowd boxes, areas and category ids as in the source
    file); they are gathered to every rank, and ``COCOeval`` runs on them. Any
    detection dataset works, COCO file or not: the ground truth is built in memory.
    Every image is evaluated exactly once (an image id seen twice is an error).

    Args:
        backend: ``'pycocotools'`` (the reference) or ``'faster_coco_eval'``.
        classwise: log a per-class AP table (and report ``bbox_AP.<class>``).
        proposal_nums: the maximum detections per image for AR (COCO's 1, 10, 100).
        format_only: evaluate nothing (a test set without labels, as COCO test-dev): the
            predictions are only written, by ``trainyard test --dump DIR``.
        confusion_score_thr, confusion_iou_thr: the confusion matrix picture counts
            detections scoring at least this, matched to ground truth at this IoU
            (mmdet's tool: 0.3 and 0.5); see :func:`~trainyard_det.confusion_matrix.detection_confusion_matrix`.
    """

    def __init__(self, backend: str = "pycocotools", classwise: bool = True, proposal_nums: Sequence[int] = (1, 10, 100),
                 format_only: bool = False, confusion_score_thr: float = 0.3, confusion_iou_thr: float = 0.5) -> None:
        _evaluator_classes(backend)
        self.backend = backend
        self.classwise = classwise
        self.proposal_nums = list(proposal_nums)
        self.format_only = format_only
        self.confusion_score_thr = confusion_score_thr
        self.confusion_iou_thr = confusion_iou_thr
        self.reset()

    def pictures(self) -> dict[str, Any]:
        """The confusion matrix of boxes per class at IoU ``confusion_iou_thr``, with a background row and column."""
        if self.format_only or not self.results:
            return {}
        from trainyard.confusion_matrix import draw_confusion_matrix
        from trainyard_det.confusion_matrix import detection_confusion_matrix

        classes = [str(c) for c in self.dataset_meta.get("classes") or ()]
        category_ids = list(self.dataset_meta.get("category_ids") or range(len(classes)))
        confusion = detection_confusion_matrix(self.results, category_ids, self.confusion_score_thr, self.confusion_iou_thr)
        names = [*classes, "background"]
        title = (f"box confusion matrix (score >= {self.confusion_score_thr:g}, IoU >= {self.confusion_iou_thr:g}; "
                 f"{len(self.results)} images)")
        return {"confusion_matrix": draw_confusion_matrix(confusion, names, text="count", title=title, unit="boxes")}

    def process(self, batch: dict[str, Any], predictions: Any) -> None:
        metas = batch.get("meta")
        if not isinstance(predictions, list) or metas is None or len(metas) != len(predictions):
            raise ModelContractError("CocoMetric: predictions must be a list of dicts (boxes, scores, labels), one per image with its meta")
        category_ids = list(self.dataset_meta.get("category_ids") or range(len(self.dataset_meta.get("classes") or ())))
        for prediction, meta in zip(predictions, metas):
            if "annotations" not in meta and not self.format_only:
                raise ModelContractError("CocoMetric: the dataset gives no meta['annotations']; use a trainyard_det dataset or add them")
            self.results.append({
                "image_id": meta["image_id"],
                "height": meta["ori_size"][0],
                "width": meta["ori_size"][1],
                "annotations": meta.get("annotations", []),
                "detections": coco_detections(prediction, meta["image_id"], category_ids),
            })

    def coco_files(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The ground truth (a COCO dataset dict) and the detections (a COCO results list) gathered so far."""
        seen: set[Any] = set()
        images, annotations, detections = [], [], []
        for item in self.results:
            if item["image_id"] in seen:
                raise ModelContractError(f"CocoMetric: image id {item['image_id']} was evaluated twice; image ids must be unique")
            seen.add(item["image_id"])
            images.append({"id": item["image_id"], "height": item["height"], "width": item["width"]})
            annotations += [{**a, "image_id": item["image_id"], "id": len(annotations) + n + 1} for n, a in enumerate(item["annotations"])]
            detections += item["detections"]
        classes = list(self.dataset_meta.get("classes") or ())
        category_ids = list(self.dataset_meta.get("category_ids") or range(len(classes)))
        categories = [{"id": category, "name": name} for category, name in zip(category_ids, classes)]
        return {"images": images, "annotations": annotations, "categories": categories}, detections

    def compute(self) -> dict[str, float]:
        if self.format_only:
            logger.info(f"CocoMetric(format_only=True): {len(self.results)} images predicted, nothing evaluated; "
                        "trainyard test --dump DIR writes the COCO results file")
            return {}
        COCO, COCOeval = _evaluator_classes(self.backend)
        ground_truth, detections = self.coco_files()
        if not detections:  # pycocotools cannot load an empty result list; the keys stay those of any other call
            logger.warning("CocoMetric: no detections at all; every AP and AR is 0")
            results = dict.fromkeys(STAT_NAMES, 0.0)
            if self.classwise:
                results.update(self._reported_per_class(self._per_class_ap_without_detections(ground_truth)))
            return results
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            gt = COCO()
            gt.dataset = ground_truth
            gt.createIndex()
            dt = gt.loadRes(detections)
            evaluation = COCOeval(gt, dt, "bbox")
            evaluation.params.maxDets = self.proposal_nums
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        summary = [line for line in printed.getvalue().splitlines() if line.lstrip().startswith("Average")]
        logger.info("COCO bbox evaluation:\n" + "\n".join(summary))
        results = {name: float(value) for name, value in zip(STAT_NAMES, evaluation.stats)}
        if self.classwise:
            per_class = self._per_class_ap(evaluation.eval["precision"], ground_truth["categories"])
            results.update(self._reported_per_class(per_class))
        return results

    @staticmethod
    def _per_class_ap_without_detections(ground_truth: dict[str, Any]) -> dict[str, float]:
        """What COCOeval gives each class when nothing was detected: 0 with (non-crowd) boxes, NaN (no AP) without."""
        with_boxes = {a["category_id"] for a in ground_truth["annotations"] if not a.get("iscrowd")}
        return {c["name"]: 0.0 if c["id"] in with_boxes else float("nan") for c in ground_truth["categories"]}

    def _per_class_ap(self, precision: np.ndarray, categories: list[dict[str, Any]]) -> dict[str, float]:
        """AP per class: precision [iou, recall, class, area, max dets] averaged over IoU and recall, area 'all', most detections."""
        table = {}
        for index, category in enumerate(categories):
            values = precision[:, :, index, 0, -1]
            values = values[values > -1]
            table[category["name"]] = float(values.mean()) if values.size else float("nan")
        return table

    @staticmethod
    def _reported_per_class(table: dict[str, float]) -> dict[str, float]:
        """Log the per-class AP table; its values as ``bbox_AP.<class>``."""
        width = max([len(name) for name in table] + [5])
        lines = [f"{'class':<{width}}  {'AP %':>6}"] + [
            f"{name:<{width}}  {'  -   ' if value != value else f'{100 * value:6.2f}'}" for name, value in table.items()
        ]
        logger.info("per-class bbox AP:\n" + "\n".join(lines))
        return {f"bbox_AP.{name}": value for name, value in table.items()}
