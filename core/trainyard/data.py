"""Dataloaders from configs: datasets, pipelines, per-sample seeding and collation.

A sample's randomness (random crops, flips, colour jitter) is seeded from
``(seed, epoch, index)`` just before it is read, so augmentation is the same
whatever the number of workers, and a resumed run sees the samples an
uninterrupted run would have seen.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from trainyard.errors import ConfigError, DatasetError
from trainyard.interrupts import ignore_stop_signals
from trainyard.pipeline_randomness import random_parts
from trainyard.registry import COLLATE_FUNCTIONS, DATA_SAMPLERS, DATASETS, TRANSFORMS, building

__all__ = ["build_dataloader", "build_pipeline", "stop_workers", "default_collate", "pseudo_collate", "SeededDataset", "sample_seed", "to_device"]


_MASK64 = (1 << 64) - 1


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed that depends only on the run seed, the epoch and the sample index.

    A SplitMix64 finaliser over the three numbers: about a microsecond in Python,
    and neighbouring samples get unrelated seeds.
    """
    z = (seed * 0x9E3779B97F4A7C15 + (epoch + 1) * 0xBF58476D1CE4E5B9 + (index + 1) * 0x94D049BB133111EB) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) & 0xFFFFFFFF


class SeededDataset(Dataset):
    """Wraps a dataset so that reading ``(epoch, index)`` seeds torch, numpy and random first.

    In the main process (``num_workers=0``) torch's global generator is restored
    after each batch, so data loading does not change the model's own randomness
    (dropout) and training gives the same weights with any number of workers.
    numpy's and python's global generators are left as the last sample seeded them
    (restoring numpy's costs ~0.1 ms a sample); they are still a function of the
    training position, and checkpoints save them. Plain integer indices pass
    through unseeded, for samplers that yield them.

    With ``seeded=False`` (a pipeline without random transforms, see
    :mod:`trainyard.pipeline_randomness`) keys are read without seeding anything:
    there is no randomness to reproduce, and the 16 us a sample are saved.
    """

    def __init__(self, dataset: Dataset, seed: int, seeded: bool = True) -> None:
        self.dataset = dataset
        self.seed = seed
        self.seeded = seeded
        self.seeding_note = ""
        """Why samples are (not) seeded, for the run's log (set by :func:`build_dataloader`)."""

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def _read(self, key: int | tuple[int, int]) -> Any:
        if not isinstance(key, tuple):
            return self.dataset[key]
        if not self.seeded:
            return self.dataset[key[1]]
        epoch, index = key
        seed = sample_seed(self.seed, epoch, index)
        torch.default_generator.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        return self.dataset[index]

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: Sequence[int | tuple[int, int]]) -> list[Any]:
        """A batch of samples; the DataLoader calls this once per batch."""
        if not self.seeded or torch.utils.data.get_worker_info() is not None:
            return [self._read(key) for key in keys]
        saved = torch.default_generator.get_state()
        try:
            return [self._read(key) for key in keys]
        finally:
            torch.default_generator.set_state(saved)


def default_collate(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Collate dict samples: equal-shape tensors are stacked, anything else becomes a list.

    Numbers become a tensor; ``meta`` dicts and detection targets stay lists of dicts.
    """
    if not samples or not isinstance(samples[0], Mapping):
        return torch.utils.data.default_collate(samples)
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [sample[key] for sample in samples]
        first = values[0]
        if isinstance(first, torch.Tensor) and all(v.shape == first.shape for v in values):
            batch[key] = torch.stack(values)
        elif isinstance(first, (int, float)) and not isinstance(first, bool):
            batch[key] = torch.tensor(values)
        else:
            batch[key] = values
    return batch


def pseudo_collate(samples: Sequence[Any]) -> dict[str, list[Any]] | list[Any]:
    """Keep every field as a list of per-sample values (no stacking)."""
    if samples and isinstance(samples[0], Mapping):
        return {key: [sample[key] for sample in samples] for key in samples[0]}
    return list(samples)


def build_pipeline(steps: Sequence[Mapping[str, Any] | Callable] | None) -> Callable[[Any], Any] | None:
    """A ``torchvision.transforms.v2.Compose`` of the ``TRANSFORMS`` configs (callables pass through)."""
    if not steps:
        return None
    from torchvision.transforms import v2

    transforms = []
    for index, step in enumerate(steps):
        with building(f"pipeline[{index}]"):
            transforms.append(step if callable(step) else TRANSFORMS.build(step))
    return v2.Compose(transforms)


def to_device(data: Any, device: torch.device) -> Any:
    """Move every tensor inside dicts, lists and tuples to ``device``."""
    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=True)
    if isinstance(data, Mapping):
        return {k: to_device(v, device) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(to_device(v, device) for v in data)
    return data


def _seed_worker(worker_id: int) -> None:
    """Worker start: distinct global streams per worker, for code that ignores per-sample seeding."""
    ignore_stop_signals()
    info = torch.utils.data.get_worker_info()
    seed = info.seed % 2**32
    np.random.seed(seed)
    random.seed(seed)


_DATALOADER_ARGUMENTS = frozenset(
    {"batch_size", "num_workers", "pin_memory", "drop_last", "timeout", "prefetch_factor", "persistent_workers", "pin_memory_device", "in_order"}
)


def build_dataloader(cfg: Mapping[str, Any], seed: int, key: str, shuffle: bool = True) -> DataLoader:
    """A ``DataLoader`` from a ``*_dataloader`` config.

    Keys: ``dataset`` (built from ``DATASETS``), ``batch_size``, ``num_workers``,
    ``sampler`` (default ``DefaultSampler``; ``shuffle`` defaults to True for
    training, False otherwise), ``batch_sampler`` (built over the sampler with the
    ``batch_size`` and ``drop_last``, e.g. ``AspectRatioBatchSampler``), ``collate_fn``
    (default ``default_collate``), and any other ``DataLoader`` argument
    (``pin_memory``, ``persistent_workers``, ``drop_last``, ``prefetch_factor``).
    """
    options = dict(cfg)
    with building(key):
        if "dataset" not in options:
            raise ConfigError(f"'{key}' has no 'dataset'")
        dataset_cfg = options.pop("dataset")
        with building("dataset"):
            try:
                dataset = dataset_cfg if isinstance(dataset_cfg, Dataset) else DATASETS.build(dataset_cfg)
            except DatasetError as exc:
                raise DatasetError(f"{key}.dataset: {exc} (set by the config's {key}.dataset, e.g. its data_root)") from None
        sampler_cfg = dict(options.pop("sampler", None) or {"type": "DefaultSampler"})
        sampler_defaults: dict[str, Any] = {"dataset": dataset}
        if sampler_cfg.get("type") == "DefaultSampler":
            sampler_defaults.update(seed=seed, shuffle=shuffle, round_up=shuffle)
        with building("sampler"):
            sampler = DATA_SAMPLERS.build(sampler_cfg, **sampler_defaults)
        batch_sampler_cfg = options.pop("batch_sampler", None)
        collate_cfg = options.pop("collate_fn", None) or {"type": "default_collate"}
        with building("collate_fn"):
            collate_fn = COLLATE_FUNCTIONS.get(collate_cfg["type"]) if isinstance(collate_cfg.get("type"), str) else collate_cfg["type"]
    unknown = sorted(set(options) - _DATALOADER_ARGUMENTS)
    if unknown:
        raise ConfigError(
            f"'{key}' has unknown keys {unknown}; a dataloader config takes dataset, sampler, batch_sampler, "
            f"collate_fn and {', '.join(sorted(_DATALOADER_ARGUMENTS))}"
        )
    batch_size = options.setdefault("batch_size", 1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"{key}.batch_size must be a positive integer, got {batch_size!r}")
    num_workers = options.setdefault("num_workers", 0)
    if num_workers == 0:
        options.pop("persistent_workers", None)
        options.pop("prefetch_factor", None)
    if batch_sampler_cfg:
        batching = {"sampler": sampler, "batch_size": options.pop("batch_size")}
        if "drop_last" in options:
            batching["drop_last"] = options.pop("drop_last")
        with building(key), building("batch_sampler"):
            samplers = {"batch_sampler": DATA_SAMPLERS.build(batch_sampler_cfg, **batching)}
    else:
        samplers = {"sampler": sampler}
    seeded, note = seeding_note(dataset, key)
    seeded_dataset = SeededDataset(dataset, seed, seeded=seeded)
    seeded_dataset.seeding_note = note
    return DataLoader(
        seeded_dataset,
        **samplers,
        collate_fn=collate_fn,
        worker_init_fn=_seed_worker,
        # A generator of its own: creating an iterator must not draw from the global
        # RNG, or a resumed run's model randomness (dropout) would drift.
        generator=torch.Generator().manual_seed(seed),
        **options,
    )


def seeding_note(dataset: Dataset, key: str) -> tuple[bool, str]:
    """Whether to seed each sample (only where reading it may draw random numbers), and a log line saying why."""
    parts = random_parts(dataset)
    name = type(dataset).__name__
    if parts == []:
        return False, f"{key}: per-sample seeding skipped, the pipeline of {name} has no random transform"
    if parts:
        return True, f"{key}: per-sample seeding on, for {', '.join(dict.fromkeys(parts))}"
    return True, (f"{key}: per-sample seeding on, as {name} keeps no pipeline to inspect (give it a class attribute "
                  "is_random = False if reading it draws no random numbers)")


def stop_workers(loader: DataLoader) -> None:
    """End a loader's persistent worker processes now (a later epoch starts new ones).

    Workers ignore SIGTERM (the main process decides when to stop), so
    ``multiprocessing``'s exit handler, which terminates and then joins them,
    would wait forever on workers still alive when the program ends.
    """
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
        loader._iterator = None
