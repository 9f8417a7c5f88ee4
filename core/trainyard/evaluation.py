"""Metrics and the evaluator, with exact distributed reduction.

A metric declares how its state combines across ranks:

- :class:`SumMetric` keeps state tensors (a confusion matrix, correct counts) that are
  summed with one all-reduce: never gathered, so the cost does not grow with the
  dataset;
- :class:`GatherMetric` keeps per-sample results (COCO detections) that are gathered
  to every rank before ``compute``.

Validation samplers do not pad, so every sample is counted exactly once and a
distributed evaluation gives the single-process numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from trainyard import dist
from trainyard.errors import ModelContractError
from trainyard.registry import METRICS, building

__all__ = ["Metric", "SumMetric", "GatherMetric", "Evaluator", "class_names_of"]


class Metric:
    """Base class: ``reset()``, ``process(batch, predictions)`` per batch, ``compute()`` at the end.

    ``dataset_meta`` is the evaluated dataset's ``metainfo`` (``classes``, ``palette``),
    set by the runner before the first batch, so class names live in one place: the
    dataset.
    """

    dataset_meta: Mapping[str, Any] = {}

    def reset(self) -> None:
        raise NotImplementedError

    def process(self, batch: Mapping[str, Any], predictions: Any) -> None:
        raise NotImplementedError

    def synchronize(self) -> None:
        """Combine the state of all ranks; called once before :meth:`compute`."""
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        raise NotImplementedError

    def pictures(self) -> dict[str, torch.Tensor]:
        """Pictures of the last :meth:`compute` (a confusion matrix, say): ``{name: uint8 [3,H,W]}``.

        The evaluation loop writes them to TensorBoard and the run's ``vis/`` folder on
        rank 0, after ``compute``; the default is none.
        """
        return {}


def class_names_of(metric: Metric, num_classes: int | None, class_names: Sequence[str] | None) -> list[str]:
    """The class names a per-class metric reports: its own, else the dataset's, else indices.

    ``num_classes`` given alongside a dataset that lists another number of classes is
    a :class:`~trainyard.errors.ModelContractError`, as is knowing no classes at all.
    """
    name = type(metric).__name__
    if class_names:
        return list(class_names)
    dataset_classes = list(metric.dataset_meta.get("classes") or ())
    if num_classes is None:
        if not dataset_classes:
            raise ModelContractError(f"{name}: the dataset's metainfo lists no classes; give the metric num_classes or class_names")
        return dataset_classes
    if dataset_classes and len(dataset_classes) != num_classes:
        raise ModelContractError(
            f"{name} has num_classes={num_classes} but the dataset lists {len(dataset_classes)} classes "
            f"{dataset_classes}; drop num_classes to use the dataset's"
        )
    return dataset_classes or [str(i) for i in range(num_classes)]


class SumMetric(Metric):
    """A metric whose state is a dict of tensors summed over batches and ranks.

    Subclasses create their tensors in :meth:`reset` (``self.state = {...}``) and add
    to them in :meth:`process`, on the predictions' device (:meth:`state_on`): a GPU
    evaluation then never waits on a copy per batch. After :meth:`synchronize` the
    state is on the CPU, for :meth:`compute`.
    """

    state: dict[str, torch.Tensor]

    def state_on(self, device: torch.device) -> dict[str, torch.Tensor]:
        """The state, moved to ``device`` the first time a batch from there arrives."""
        for key, value in self.state.items():
            if value.device != device:
                self.state[key] = value.to(device)
        return self.state

    def synchronize(self) -> None:
        self.state = {key: value.cpu() for key, value in dist.all_reduce_tensors(self.state).items()}


class GatherMetric(Metric):
    """A metric that keeps one result per sample in ``self.results``."""

    def reset(self) -> None:
        self.results: list[Any] = []

    def synchronize(self) -> None:
        self.results = [item for part in dist.all_gather_objects(self.results) for item in part]


class Evaluator:
    """The metrics of one split, fed batch by batch; ``evaluate`` returns all their numbers."""

    def __init__(self, metrics: Sequence[Metric]) -> None:
        self.metrics = list(metrics)

    def set_dataset_meta(self, meta: Mapping[str, Any]) -> None:
        """Give every metric the dataset's ``metainfo``."""
        for metric in self.metrics:
            metric.dataset_meta = dict(meta)

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any] | Sequence[Mapping[str, Any]], key: str) -> Evaluator:
        configs = [cfg] if isinstance(cfg, Mapping) else list(cfg)
        metrics = []
        for index, metric_cfg in enumerate(configs):
            with building(key if isinstance(cfg, Mapping) else f"{key}[{index}]"):
                metrics.append(METRICS.build(metric_cfg))
        return cls(metrics)

    def reset(self) -> None:
        for metric in self.metrics:
            metric.reset()

    def process(self, batch: Mapping[str, Any], predictions: Any) -> None:
        for metric in self.metrics:
            metric.process(batch, predictions)

    def evaluate(self) -> dict[str, float]:
        results: dict[str, float] = {}
        for metric in self.metrics:
            metric.synchronize()
            values = metric.compute()
            clash = set(values) & set(results)
            if clash:
                raise ValueError(f"two metrics report {sorted(clash)}; give them different names")
            results.update(values)
        return results

    def pictures(self) -> dict[str, torch.Tensor]:
        """Every metric's pictures of its last result."""
        return {name: picture for metric in self.metrics for name, picture in metric.pictures().items()}
