"""Datasets made of other datasets: concatenated, repeated, or rebalanced by class.

MMEngine's wrappers under the same names and arguments, so OpenMMLab configs keep
their shape (``dataset=dict(type='RepeatDataset', times=3, dataset=dict(...))``).
Each wrapper builds the datasets it is given as configs (MMEngine semantics), keeps
the wrapped dataset's ``metainfo`` (classes, palette), and maps an index to the
wrapped dataset's for the annotation accessors that samplers and other wrappers read
without loading an image: ``get_data_info(index)`` (``width`` and ``height``) and
``get_cat_ids(index)`` (the labels in an image).

A wrapper's order of samples is fixed when it is built; shuffling, sharding across
ranks and the resume position stay the sampler's job, so a wrapped dataset resumes
exactly as a plain one does.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from trainyard.errors import ConfigError
from trainyard.registry import DATASETS, building

__all__ = ["ConcatDataset", "RepeatDataset", "ClassBalancedDataset", "build_dataset"]


def build_dataset(cfg: Mapping[str, Any] | Dataset, key: str = "dataset") -> Dataset:
    """A dataset from its config, or the dataset itself when one is given."""
    if isinstance(cfg, Dataset):
        return cfg
    with building(key):
        return DATASETS.build(cfg)


def _annotation(dataset: Any, method: str, index: int, wrapper: str) -> Any:
    accessor = getattr(dataset, method, None)
    if accessor is None:
        raise ConfigError(
            f"{wrapper} needs {type(dataset).__name__}.{method}(index) to read an image's annotation without "
            f"loading it; that dataset has no such method"
        )
    return accessor(index)


class _Wrapper(Dataset):
    """What every wrapper shares: the wrapped dataset's metainfo and index-mapped annotation accessors."""

    dataset: Dataset

    @property
    def metainfo(self) -> dict[str, Any]:
        return dict(getattr(self.dataset, "metainfo", None) or {})

    def source_index(self, index: int) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.source_index(index)]

    def get_data_info(self, index: int) -> Mapping[str, Any]:
        return _annotation(self.dataset, "get_data_info", self.source_index(index), type(self).__name__)

    def get_cat_ids(self, index: int) -> list[int]:
        return _annotation(self.dataset, "get_cat_ids", self.source_index(index), type(self).__name__)


class ConcatDataset(torch.utils.data.ConcatDataset):
    """The datasets one after another (``torch.utils.data.ConcatDataset``), built from configs.

    Their ``classes`` must agree: samples of one label space are mixed, so two
    datasets naming different classes are an error rather than silently merged labels.
    ``metainfo`` is the first dataset's.

    Args:
        datasets: dataset configs (or datasets).
    """

    def __init__(self, datasets: Sequence[Mapping[str, Any] | Dataset]) -> None:
        if isinstance(datasets, (Mapping, Dataset)) or not datasets:
            raise ConfigError(f"ConcatDataset: 'datasets' must be a non-empty list of dataset configs, got {datasets!r}")
        super().__init__([build_dataset(cfg, f"datasets[{number}]") for number, cfg in enumerate(datasets)])
        classes = [tuple((getattr(d, "metainfo", None) or {}).get("classes") or ()) for d in self.datasets]
        differing = [number for number, names in enumerate(classes) if names != classes[0]]
        if differing:
            raise ConfigError(
                f"ConcatDataset: datasets[{differing[0]}] has classes {list(classes[differing[0]])}, but datasets[0] has "
                f"{list(classes[0])}; concatenated datasets must share one label space (set the same 'classes' on each)"
            )

    @property
    def metainfo(self) -> dict[str, Any]:
        return dict(getattr(self.datasets[0], "metainfo", None) or {})

    def source(self, index: int) -> tuple[Dataset, int]:
        """The dataset holding ``index`` and the index inside it."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for ConcatDataset of length {len(self)}")
        number = bisect.bisect_right(self.cumulative_sizes, index)
        return self.datasets[number], index - (self.cumulative_sizes[number - 1] if number else 0)

    def get_data_info(self, index: int) -> Mapping[str, Any]:
        dataset, inner = self.source(index)
        return _annotation(dataset, "get_data_info", inner, "ConcatDataset")

    def get_cat_ids(self, index: int) -> list[int]:
        dataset, inner = self.source(index)
        return _annotation(dataset, "get_cat_ids", inner, "ConcatDataset")


class RepeatDataset(_Wrapper):
    """The dataset ``times`` over, as one epoch: fewer, longer epochs for a small dataset.

    Each copy of a sample has its own index, so it gets its own augmentation draw
    (see :func:`trainyard.data.sample_seed`).

    Args:
        dataset: a dataset config (or dataset).
        times: how many copies.
    """

    def __init__(self, dataset: Mapping[str, Any] | Dataset, times: int) -> None:
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ConfigError(f"RepeatDataset: times must be a positive integer, got {times!r}")
        self.dataset = build_dataset(dataset)
        self.times = times
        self._size = len(self.dataset)

    def __len__(self) -> int:
        return self.times * self._size

    def source_index(self, index: int) -> int:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for RepeatDataset of length {len(self)}")
        return index % self._size


def repeat_factors(cat_ids: Sequence[Sequence[int]], oversample_thr: float) -> list[float]:
    """LVIS repeat factors: ``r(c) = max(1, sqrt(t / f(c)))`` per class, an image's the max over its classes.

    ``f(c)`` is the fraction of images holding class ``c``; an image with no label
    keeps factor 1.
    """
    counts = Counter(c for ids in cat_ids for c in set(ids))
    category_repeat = {c: max(1.0, math.sqrt(oversample_thr / (n / len(cat_ids)))) for c, n in counts.items()}
    return [max((category_repeat[c] for c in set(ids)), default=1.0) for ids in cat_ids]


class ClassBalancedDataset(_Wrapper):
    """Images of rare classes repeated (LVIS-style repeat factor sampling), as MMEngine does it.

    An image's repeat factor ``r`` is the largest of its classes' ``max(1, sqrt(t / f(c)))``,
    with ``t`` the ``oversample_thr`` and ``f(c)`` the fraction of images holding
    class ``c``; it appears ``ceil(r)`` times. The classes come from the wrapped
    dataset's ``get_cat_ids(index)``, which detection datasets answer from their
    annotations. Rounding up once, rather than drawing a random rounding each epoch
    (Detectron2's ``RepeatFactorTrainingSampler``), keeps the epoch length fixed, so
    schedules and resume positions count the same iterations every epoch.

    Args:
        dataset: a dataset config (or dataset).
        oversample_thr: classes in fewer than this fraction of the images are
            oversampled (1e-3 for LVIS).
    """

    def __init__(self, dataset: Mapping[str, Any] | Dataset, oversample_thr: float) -> None:
        if isinstance(oversample_thr, bool) or not isinstance(oversample_thr, (int, float)) or oversample_thr <= 0:
            raise ConfigError(f"ClassBalancedDataset: oversample_thr must be a positive number, got {oversample_thr!r}")
        self.dataset = build_dataset(dataset)
        self.oversample_thr = float(oversample_thr)
        cat_ids = [_annotation(self.dataset, "get_cat_ids", i, "ClassBalancedDataset") for i in range(len(self.dataset))]
        self.repeat_factors = repeat_factors(cat_ids, self.oversample_thr)
        self.repeat_indices = [i for i, factor in enumerate(self.repeat_factors) for _ in range(math.ceil(factor))]

    def __len__(self) -> int:
        return len(self.repeat_indices)

    def source_index(self, index: int) -> int:
        return self.repeat_indices[index]
