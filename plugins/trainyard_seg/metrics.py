"""Segmentation metrics from a confusion matrix that is summed across ranks, never gathered."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from trainyard import ModelContractError, SumMetric
from trainyard.evaluation import class_names_of
from trainyard_seg import IGNORE_INDEX


class IoUMetric(SumMetric):
    """Per-class IoU and accuracy, mIoU, mAcc and aAcc (fractions in [0, 1]).

    Classes absent from both the labels and the predictions have no IoU and are left
    out of the means. Pixels labelled ``ignore_index`` are not counted.

    The classes come from the evaluated dataset's ``metainfo`` (``dataset_meta``), so a
    config names them once, on the dataset. ``num_classes`` and ``class_names`` are for
    datasets that do not list their classes, or to rename them.

    Args:
        num_classes: number of classes (default: as many as the dataset lists).
        class_names: names for the per-class table and keys (default: the dataset's,
            else the indices).
        ignore_index: label value that is not evaluated.
        per_class: also report ``IoU.<name>`` and ``Acc.<name>``.
    """

    def __init__(self, num_classes: int | None = None, class_names: Sequence[str] | None = None,
                 ignore_index: int = IGNORE_INDEX, per_class: bool = True) -> None:
        if class_names and num_classes is not None and len(class_names) != num_classes:
            raise ValueError(f"IoUMetric has {num_classes} classes but {len(class_names)} class_names")
        self._num_classes = num_classes
        self._class_names = list(class_names) if class_names else None
        self.ignore_index = ignore_index
        self.per_class = per_class
        self.state = {}
        if num_classes is not None or class_names:
            self.reset()

    @property
    def class_names(self) -> list[str]:
        return class_names_of(self, self._num_classes, self._class_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def reset(self) -> None:
        self.state = {"confusion": torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)}

    def process(self, batch: dict[str, Any], predictions: Any) -> None:
        if not self.state:
            self.reset()
        targets = batch["targets"]
        pairs = zip(targets, predictions) if isinstance(predictions, list) or isinstance(targets, list) else [(targets, predictions)]
        confusion = self.state_on(targets[0].device if isinstance(targets, list) else targets.device)["confusion"]
        num_classes = confusion.shape[0]
        for target, prediction in pairs:
            if target.shape != prediction.shape:
                raise ModelContractError(
                    f"IoUMetric: prediction shape {tuple(prediction.shape)} differs from label shape {tuple(target.shape)}; "
                    "predictions must be label maps at the labels' size"
                )
            valid = target != self.ignore_index
            index = target[valid].long() * num_classes + prediction[valid].long()
            counts = torch.bincount(index, minlength=num_classes**2)
            confusion += counts.reshape(num_classes, num_classes)

    def compute(self) -> dict[str, float]:
        confusion = self.state["confusion"].double()
        correct = confusion.diag()
        labelled = confusion.sum(dim=1)
        predicted = confusion.sum(dim=0)
        union = labelled + predicted - correct
        iou = torch.where(union > 0, correct / union.clamp(min=1), torch.full_like(correct, float("nan")))
        accuracy = torch.where(labelled > 0, correct / labelled.clamp(min=1), torch.full_like(correct, float("nan")))
        results = {
            "mIoU": _nanmean(iou),
            "mAcc": _nanmean(accuracy),
            "aAcc": (correct.sum() / confusion.sum()).item() if confusion.sum() > 0 else float("nan"),
        }
        if self.per_class:
            for name, class_iou, class_accuracy in zip(self.class_names, iou.tolist(), accuracy.tolist()):
                results[f"IoU.{name}"] = class_iou
                results[f"Acc.{name}"] = class_accuracy
        logging.getLogger("trainyard").info("per-class results:\n" + self.table(iou, accuracy))
        return results

    def pictures(self) -> dict[str, torch.Tensor]:
        """The pixel-level confusion matrix, each row normalised to the share of that class's labelled pixels."""
        if not self.state:
            return {}
        from trainyard.confusion_matrix import draw_confusion_matrix

        title = "pixel confusion matrix (% of each true class's labelled pixels)"
        return {"confusion_matrix": draw_confusion_matrix(self.state["confusion"], self.class_names, text="percent", title=title,
                                                          unit="pixels")}

    def table(self, iou: torch.Tensor, accuracy: torch.Tensor) -> str:
        width = max(len(name) for name in self.class_names + ["class"])
        lines = [f"{'class':<{width}}  {'IoU %':>7}  {'Acc %':>7}"]
        for name, class_iou, class_accuracy in zip(self.class_names, iou.tolist(), accuracy.tolist()):
            lines.append(f"{name:<{width}}  {_percent(class_iou):>7}  {_percent(class_accuracy):>7}")
        return "\n".join(lines)


def _nanmean(values: torch.Tensor) -> float:
    present = values[~values.isnan()]
    return present.mean().item() if present.numel() else float("nan")


def _percent(value: float) -> str:
    return "   -   " if value != value else f"{100 * value:.2f}"
