"""The default sampler: shuffled by ``(seed, epoch)``, sharded by rank, resumable mid-epoch."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import torch

from trainyard.dist import get_rank, get_world_size

__all__ = ["DefaultSampler", "SampleKey"]

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
