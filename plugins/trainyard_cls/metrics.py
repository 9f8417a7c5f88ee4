"""Classification metrics from counts that are summed across ranks, never gathered."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from trainyard import ModelContractError, SumMetric
from trainyard.evaluation import class_names_of

logger = logging.getLogger("trainyard")


def _hard_targets(batch: dict[str, Any], logits: torch.Tensor, metric: str) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ModelContractError(f"{metric}: predictions must be logits [B, K], got {getattr(logits, 'shape', type(logits).__name__)}")
    targets = batch["targets"]
    if targets.ndim == 2:  # soft targets: their most likely class
        targets = targets.argmax(dim=1)
    if targets.shape[0] != logits.shape[0]:
        raise ModelContractError(f"{metric}: {logits.shape[0]} predictions for {targets.shape[0]} targets")
    return targets.to(logits.device)


class Accuracy(SumMetric):
    """Top-k accuracy (fractions in [0, 1]) as ``accuracy_top1``, ``accuracy_top5``, ...

    The counts of correct predictions are summed across ranks, so a distributed
    evaluation gives the single-process figure. A ``k`` not below the number of
    classes is left out (it would always be 1), with a warning.

    Args:
        topk: the k's to report.
    """

    def __init__(self, topk: int | Sequence[int] = (1,)) -> None:
        self.topk = (topk,) if isinstance(topk, int) else tuple(topk)
        if not self.topk or any(k < 1 for k in self.topk):
            raise ValueError(f"Accuracy: topk must be positive integers, got {topk!r}")
        self.reset()

    def reset(self) -> None:
        self.state = {"correct": torch.zeros(len(self.topk), dtype=torch.int64), "total": torch.zeros((), dtype=torch.int64)}
        self._num_classes: int | None = None

    def process(self, batch: dict[str, Any], predictions: Any) -> None:
        targets = _hard_targets(batch, predictions, "Accuracy")
        self._num_classes = predictions.shape[1]
        ranked = predictions.topk(min(max(self.topk), predictions.shape[1]), dim=1).indices
        hits = ranked == targets.unsqueeze(1)
        state = self.state_on(predictions.device)
        state["correct"] += torch.stack([hits[:, :k].any(dim=1).sum() for k in self.topk])
        state["total"] += targets.shape[0]

    def compute(self) -> dict[str, float]:
        total = int(self.state["total"])
        results = {}
        for k, correct in zip(self.topk, self.state["correct"].tolist()):
            if self._num_classes is not None and k >= self._num_classes and k > 1:
                logger.warning(f"Accuracy: top-{k} left out: there are only {self._num_classes} classes")
                continue
            results[f"accuracy_top{k}"] = correct / total if total else float("nan")
        return results


class ClassificationReport(SumMetric):
    """Per-class precision, recall and F1, their macro averages, and the confusion matrix.

    As scikit-learn's ``classification_report`` (``zero_division=0``): precision of a
    class never predicted is 0, and the macro averages run over the classes present
    in the labels or the predictions. The per-class table goes to the log; the
    confusion matrix (rows: true class, columns: predicted) is a picture in
    TensorBoard and the run's ``vis/`` folder.

    Args:
        num_classes, class_names: as for ``IoUMetric`` (default: the dataset's classes).
        per_class: also report ``precision.<name>``, ``recall.<name>``, ``f1.<name>``.
    """

    def __init__(self, num_classes: int | None = None, class_names: Sequence[str] | None = None, per_class: bool = True) -> None:
        self._num_classes = num_classes
        self._class_names = list(class_names) if class_names else None
        self.per_class = per_class
        self.state = {}

    @property
    def class_names(self) -> list[str]:
        return class_names_of(self, self._num_classes, self._class_names)

    def reset(self) -> None:
        count = len(self.class_names)
        self.state = {"confusion": torch.zeros(count, count, dtype=torch.int64)}

    def process(self, batch: dict[str, Any], predictions: Any) -> None:
        if not self.state:
            self.reset()
        targets = _hard_targets(batch, predictions, "ClassificationReport")
        confusion = self.state_on(predictions.device)["confusion"]
        count = confusion.shape[0]
        if predictions.shape[1] != count:
            names = ", ".join(self.class_names[:8]) + (", ..." if count > 8 else "")
            raise ModelContractError(
                f"ClassificationReport: the model predicts {predictions.shape[1]} classes, but the evaluated dataset lists {count} "
                f"({names}); read it with the training set's class list (an ImageFolder split: classes_from='train')"
            )
        index = targets.long() * count + predictions.argmax(dim=1)
        confusion += torch.bincount(index, minlength=count * count).reshape(count, count)

    def compute(self) -> dict[str, float]:
        confusion = self.state["confusion"].double()
        correct = confusion.diag()
        support = confusion.sum(dim=1)
        predicted = confusion.sum(dim=0)
        precision = torch.where(predicted > 0, correct / predicted.clamp(min=1), torch.zeros_like(correct))
        recall = torch.where(support > 0, correct / support.clamp(min=1), torch.zeros_like(correct))
        f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12), torch.zeros_like(correct))
        present = (support > 0) | (predicted > 0)
        results = {
            "macro_precision": precision[present].mean().item(),
            "macro_recall": recall[present].mean().item(),
            "macro_f1": f1[present].mean().item(),
        }
        if self.per_class:
            for name, p, r, f in zip(self.class_names, precision.tolist(), recall.tolist(), f1.tolist()):
                results.update({f"precision.{name}": p, f"recall.{name}": r, f"f1.{name}": f})
        logger.info("per-class results:\n" + self.table(precision, recall, f1, support))
        return results

    def table(self, precision: torch.Tensor, recall: torch.Tensor, f1: torch.Tensor, support: torch.Tensor) -> str:
        width = max(len(name) for name in [*self.class_names, "class", "macro avg"])
        lines = [f"{'class':<{width}}  {'precision':>9}  {'recall':>7}  {'f1':>7}  {'support':>8}"]
        for name, p, r, f, n in zip(self.class_names, precision.tolist(), recall.tolist(), f1.tolist(), support.tolist()):
            lines.append(f"{name:<{width}}  {100 * p:>9.2f}  {100 * r:>7.2f}  {100 * f:>7.2f}  {int(n):>8}")
        present = (support > 0) | (self.state["confusion"].sum(dim=0) > 0)
        lines.append(
            f"{'macro avg':<{width}}  {100 * precision[present].mean().item():>9.2f}  {100 * recall[present].mean().item():>7.2f}  "
            f"{100 * f1[present].mean().item():>7.2f}  {int(support.sum()):>8}"
        )
        return "\n".join(lines)

    def pictures(self) -> dict[str, torch.Tensor]:
        if not self.state:
            return {}
        from trainyard_cls.visualization import draw_confusion_matrix

        return {"confusion_matrix": draw_confusion_matrix(self.state["confusion"], self.class_names)}
