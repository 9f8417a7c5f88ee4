"""Samplers: the default one (shuffled by ``(seed, epoch)``, sharded by rank, resumable
mid-epoch) and a batch sampler that groups detection images by orientation on top of it."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import torch

from trainyard.dist import get_rank, get_world_size
from trainyard.errors import ConfigError

__all__ = ["DefaultSampler", "AspectRatioBatchSampler", "SampleKey"]

SampleKey = tuple[int, int]
"""``(epoch, dataset index)``: what the default sampler yields, so a sample's
randomness can be derived from where it is in training rather than from process
history (see :class:`trainyard.data.SeededDataset`)."""


class DefaultSampler(torch.utils.data.Sampler):
    """Yields ``(epoch, index)`` keys for this rank's share of the dataset.

    The order of an epoch depends only on ``seed`` and the epoch, and rank ``r`` takes
    every ``world_size``-th index from ``r``. With ``round_up`` (training) the list is
    padded by repeating its start so that every rank gets the same number of samples;
    without it (evaluation) no sample is repeated and ranks may differ by one.
    ``set_start(k)`` makes the next pass begin at this rank's ``k``-th sample without
    reading the ones before it, which is how a resumed run continues mid-epoch.
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: int | None = None, round_up: bool = True) -> None:
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = 0 if seed is None else int(seed)
        self.round_up = round_up
        self.rank = get_rank()
        self.world_size = get_world_size()
        self.epoch = 0
        self._start = 0
        size = len(dataset)
        if round_up:
            self.num_samples = math.ceil(size / self.world_size)
            self.total_size = self.num_samples * self.world_size
        else:
            self.num_samples = len(range(self.rank, size, self.world_size))
            self.total_size = size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_start(self, position: int) -> None:
        """Begin the next pass at this rank's ``position``-th sample."""
        self._start = position

    def indices(self) -> list[int]:
        """This rank's dataset indices for the current epoch, in order."""
        size = len(self.dataset)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(size, generator=generator).tolist()
        else:
            order = list(range(size))
        if self.round_up and self.total_size > size:
            order = (order * math.ceil(self.total_size / size))[: self.total_size]
        return order[self.rank : self.total_size : self.world_size]

    def __iter__(self) -> Iterator[SampleKey]:
        start, self._start = self._start, 0
        epoch = self.epoch
        return iter([(epoch, index) for index in self.indices()[start:]])

    def __len__(self) -> int:
        return self.num_samples


class AspectRatioBatchSampler(torch.utils.data.Sampler):
    """Batches of one orientation: images with ``width >= height`` and the others batched apart.

    mmdet's ``AspectRatioBatchSampler`` (torchvision's reference ``GroupedBatchSampler``
    with two groups): detectors pad a batch to its largest image, so mixing landscape
    and portrait images wastes most of the padded area. The sampler's keys are taken in
    order and put in their orientation's bucket; a full bucket is a batch. At the end of
    the pass the two remainders are batched together, so a rank yields exactly
    ``ceil(n / batch_size)`` batches (``floor`` with ``drop_last``) like a plain batch
    sampler, and every rank of a :class:`DefaultSampler` the same number.

    Image sizes come from ``dataset.get_data_info(index)`` (``width``, ``height``: the
    annotation's, as COCO and VOC files list them), read once when the sampler is built
    and never from the images. ``set_start(k)`` makes the next pass begin at batch ``k``;
    the batches before it are worked out from indices alone, nothing is loaded.

    Args:
        sampler: yields this rank's keys (``(epoch, index)`` or plain indices) and
            has the ``dataset`` they index.
        batch_size: images per batch (the dataloader's ``batch_size``).
        drop_last: drop the last, shorter batch.
    """

    def __init__(self, sampler: torch.utils.data.Sampler, batch_size: int, drop_last: bool = False) -> None:
        dataset = getattr(sampler, "dataset", None)
        if dataset is None:
            raise ConfigError(f"AspectRatioBatchSampler needs a sampler that has a 'dataset' (as DefaultSampler does), got {type(sampler).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"AspectRatioBatchSampler: batch_size must be a positive integer, got {batch_size!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.portrait = [_is_portrait(dataset, index) for index in range(len(dataset))]
        self._start = 0

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def set_start(self, position: int) -> None:
        """Begin the next pass at this rank's ``position``-th batch."""
        self._start = position

    def batches(self) -> list[list[SampleKey | int]]:
        """This pass's batches, in order."""
        buckets: tuple[list, list] = ([], [])
        batches = []
        for key in self.sampler:
            bucket = buckets[self.portrait[key[1] if isinstance(key, tuple) else key]]
            bucket.append(key)
            if len(bucket) == self.batch_size:
                batches.append(bucket[:])
                bucket.clear()
        rest = buckets[0] + buckets[1]
        batches += [rest[i : i + self.batch_size] for i in range(0, len(rest), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def __iter__(self) -> Iterator[list[SampleKey | int]]:
        start, self._start = self._start, 0
        return iter(self.batches()[start:])

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return math.ceil(len(self.sampler) / self.batch_size)


def _is_portrait(dataset: Sized, index: int) -> bool:
    accessor = getattr(dataset, "get_data_info", None)
    if accessor is None:
        raise ConfigError(
            f"AspectRatioBatchSampler needs {type(dataset).__name__}.get_data_info(index) returning the image's "
            "'width' and 'height' from its annotation; that dataset has no such method"
        )
    info = accessor(index)
    try:
        return info["width"] < info["height"]
    except (KeyError, TypeError):
        raise ConfigError(
            f"AspectRatioBatchSampler: {type(dataset).__name__}.get_data_info({index}) must give 'width' and 'height', got {info!r}"
        ) from None
