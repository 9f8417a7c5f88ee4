"""Detection's test-time augmentation: the detections of every view, mapped back, merged by per-class NMS."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torchvision.ops import batched_nms

from trainyard import ConfigError
from trainyard.tta import BaseTTAModel, View


class DetTTAModel(BaseTTAModel):
    """Boxes of every view in the original image's pixels, pooled, then NMS per class (mmdet's ``DetTTAModel``).

    A flipped view's boxes are mirrored back (``x -> width - x``). A scaled view of a
    torchvision detector scales its internal resize (``min_size``, ``max_size``), which
    would otherwise undo a resized input; detectors without one get resized images.
    A detector of fixed input size (SSDlite) sees every scale alike: use ``flip`` alone.

    Args:
        tta_cfg: mmdet's ``dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)``:
            the IoU above which the lower-scoring box of a class is dropped, and how
            many detections an image keeps (the highest scoring).
    """

    task = "detection"

    def __init__(self, module: Mapping[str, Any] | torch.nn.Module, scales: Any = (1.0,), flip: bool = True,
                 tta_cfg: Mapping[str, Any] | None = None) -> None:
        super().__init__(module, scales, flip)
        options = dict(tta_cfg or {})
        nms = dict(options.pop("nms", None) or {})
        self.max_per_img = options.pop("max_per_img", 100)
        nms_type = nms.pop("type", "nms")
        self.iou_threshold = nms.pop("iou_threshold", 0.5)
        if options or nms or nms_type != "nms":
            raise ConfigError(f"tta_model.tta_cfg takes nms=dict(type='nms', iou_threshold=0.5) and max_per_img=100; got "
                              f"{dict(tta_cfg or {})!r} (only 'nms' merges boxes here; soft-NMS and box voting are not available)")
        if not isinstance(self.max_per_img, int) or isinstance(self.max_per_img, bool) or self.max_per_img < 1:
            raise ConfigError(f"tta_model.tta_cfg.max_per_img must be a positive integer, got {self.max_per_img!r}")
        if not isinstance(self.iou_threshold, (int, float)) or not 0 < self.iou_threshold <= 1:
            raise ConfigError(f"tta_model.tta_cfg.nms.iou_threshold must be in (0, 1], got {self.iou_threshold!r}")

    expected_output = "per-image dicts of 'boxes', 'scores' and 'labels'"

    def output_fits(self, output: Any) -> bool:
        return (isinstance(output, (list, tuple))
                and all(isinstance(image, Mapping) and {"boxes", "scores", "labels"} <= set(image) for image in output))

    def _internal_resize(self) -> Any:
        """torchvision's ``GeneralizedRCNNTransform`` of the detector, when it resizes by ``min_size``/``max_size``."""
        transform = getattr(getattr(self.module, "net", None), "transform", None)
        if transform is None or not hasattr(transform, "min_size") or not hasattr(transform, "max_size"):
            return None
        return transform

    def view_image(self, image: torch.Tensor, view: View) -> torch.Tensor:
        if self._internal_resize() is not None:  # the detector resizes: the scale goes to its sizes (_scaled_resize)
            return image.flip(-1) if view.flip else image
        return super().view_image(image, view)

    @contextlib.contextmanager
    def _scaled_resize(self, scale: float) -> Iterator[None]:
        transform = self._internal_resize()
        if transform is None or scale == 1.0:
            yield
            return
        saved = transform.min_size, transform.max_size
        transform.min_size = tuple(max(round(size * scale), 1) for size in saved[0])
        transform.max_size = max(round(saved[1] * scale), 1)
        try:
            yield
        finally:
            transform.min_size, transform.max_size = saved

    def predict_view(self, view_batch: dict[str, Any], view: View, batch: dict[str, Any], mode: str) -> list[dict[str, torch.Tensor]]:
        with self._scaled_resize(view.scale):
            outputs = self.module_output(view_batch, "predict")
        if not view.flip:
            return outputs
        mirrored = []
        for output, meta in zip(outputs, view_batch["meta"]):
            width = meta["ori_size"][1]
            boxes = output["boxes"]
            mirrored.append({**output, "boxes": torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)})
        return mirrored

    def merge(self, predictions: list[list[dict[str, torch.Tensor]]], batch: dict[str, Any], mode: str) -> list[dict[str, torch.Tensor]]:
        merged = []
        for views in zip(*predictions):
            boxes = torch.cat([view["boxes"] for view in views])
            scores = torch.cat([view["scores"] for view in views])
            labels = torch.cat([view["labels"] for view in views])
            keep = batched_nms(boxes.float(), scores.float(), labels, float(self.iou_threshold))[: self.max_per_img]
            merged.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return merged
