"""Pictures of detections during validation: ground truth and predicted boxes on the image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from trainyard.deprecation import renamed_argument
from trainyard.drawing import below, draw_labelled_boxes, grid, legend, titled
from trainyard.hooks import VisualizationHook

CLASS_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
                 (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
                 (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199),
                 (219, 219, 141), (158, 218, 229))
"""matplotlib's tab20, one colour per class (repeating after 20)."""


def class_colour(label: int) -> tuple[int, int, int]:
    return CLASS_COLOURS[label % len(CLASS_COLOURS)]


def detection_panels(image: torch.Tensor, prediction: Mapping[str, torch.Tensor], truth: Mapping[str, torch.Tensor] | None,
                     class_names: Sequence[str], score_thr: float = 0.3, scale: tuple[float, float] = (1.0, 1.0),
                     min_side: int = 384) -> tuple[list[torch.Tensor], set[int]]:
    """The titled panels of one image, ``ground truth`` (when given) and ``predictions``, and the labels they show.

    Boxes and labels are in their class's colour; predictions scoring below
    ``score_thr`` are left out, the others labelled ``name score``, best first, so
    that where labels would overlap the best one is written. ``scale`` maps the
    prediction's (original-image) coordinates onto ``image``: (x factor, y factor).
    Images smaller than ``min_side`` are enlarged first.
    """
    from torchvision.transforms.v2 import functional as F

    def name(label: int) -> str:
        return str(class_names[label]) if 0 <= label < len(class_names) else str(label)

    enlarge = max(1.0, min_side / min(image.shape[-2:]))  # small images are enlarged so the labels stay readable
    picture = F.resize(image, [round(image.shape[-2] * enlarge), round(image.shape[-1] * enlarge)], antialias=True) if enlarge > 1 else image
    panels, shown = [], set()
    if truth is not None:
        labels = [int(label) for label in truth["labels"]]
        boxes = truth["boxes"].float().reshape(-1, 4) * enlarge
        panels.append(titled(draw_labelled_boxes(picture, boxes, [name(l) for l in labels], [class_colour(l) for l in labels]),
                             f"ground truth ({len(labels)})"))
        shown |= set(labels)
    keep = (prediction["scores"] >= score_thr).nonzero().flatten()
    order = keep[prediction["scores"][keep].argsort(descending=True)]
    labels = [int(label) for label in prediction["labels"][order]]
    boxes = prediction["boxes"][order].float().reshape(-1, 4) * torch.tensor([scale[0], scale[1]] * 2) * enlarge
    texts = [f"{name(l)} {float(s):.2f}" for l, s in zip(labels, prediction["scores"][order])]
    title = f"predictions ({len(labels)} with score >= {score_thr:.2f})" if score_thr > 0 else f"predictions ({len(labels)})"
    panels.append(titled(draw_labelled_boxes(picture, boxes, texts, [class_colour(l) for l in labels]), title))
    return panels, shown | set(labels)


def class_legend(labels: set[int], class_names: Sequence[str], width: int) -> torch.Tensor:
    """A band naming the colour of each class shown."""
    return legend([(str(class_names[l]) if 0 <= l < len(class_names) else str(l), class_colour(l)) for l in sorted(labels)], width)


def draw_detections(image: torch.Tensor, prediction: Mapping[str, torch.Tensor], truth: Mapping[str, torch.Tensor] | None,
                    class_names: Sequence[str], score_thr: float = 0.3, scale: tuple[float, float] = (1.0, 1.0),
                    min_side: int = 384) -> torch.Tensor:
    """uint8 ``[3,H,W]``: the ground truth panel (when given) beside the predictions panel, and a legend of the classes."""
    panels, shown = detection_panels(image, prediction, truth, class_names, score_thr, scale, min_side)
    picture = grid([panels])
    return below(picture, class_legend(shown, class_names, picture.shape[-1])) if shown else picture


class DetVisualizationHook(VisualizationHook):
    """Every ``interval`` validation (and test) batches, up to ``max_images`` of its images with their boxes.

    A row per image: the ground truth panel beside the predictions panel (those with
    a score of at least ``score_thr``, with their scores), boxes in their class's
    colour, labels that never overlap, small images enlarged, and a legend of the
    classes below. Written to TensorBoard
    (``val/detections_<batch>``) and the run's ``vis/`` folder (``test_...`` in a test run).

    Args:
        interval: batches between pictures (batch 0 is always drawn).
        score_thr: the lowest score drawn (as ``trainyard predict --score-thr``).
        max_images: images (rows) in one picture.
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
        rows, shown = [], set()
        for image, output, meta, truth in list(zip(data_batch["inputs"], outputs, metas, targets))[: self.max_images]:
            image = image.cpu()
            if image.dtype != torch.uint8:
                continue
            prediction = {k: v.detach().cpu() for k, v in output.items()}
            height, width = image.shape[-2:]
            original_height, original_width = meta.get("ori_size", (height, width))
            row, labels = detection_panels(image, prediction, truth, class_names, self.score_thr,
                                           scale=(width / original_width, height / original_height))
            rows.append(row)
            shown |= labels
        if not rows:
            return None
        picture = grid(rows)
        return below(picture, class_legend(shown, class_names, picture.shape[-1])) if shown else picture
