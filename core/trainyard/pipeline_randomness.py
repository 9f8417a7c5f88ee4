"""Whether reading a dataset draws random numbers, so that per-sample seeding can be skipped when it does not.

Seeding torch, numpy and python before every sample (:class:`trainyard.data.SeededDataset`)
costs about 16 us a sample in the loading process. It buys reproducible augmentation;
a pipeline without a random transform has nothing to reproduce. The answer errs on the
side of seeding: anything not known to be deterministic counts as random.

A transform or dataset declares itself with a class attribute ``is_random``::

    class SegPad(v2.Transform):
        is_random = False      # pads to a fixed size: no seeding needed for it

torchvision's transforms are known by class (``Random*``, ``ColorJitter``,
``RandAugment``, ... are random; ``Resize``, ``Normalize``, ``ToDtype``, ... are not),
and so are subclasses of them that declare nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["random_parts", "RANDOM_TORCHVISION_TRANSFORMS"]

RANDOM_TORCHVISION_TRANSFORMS = frozenset({
    "ColorJitter", "RandAugment", "AutoAugment", "TrivialAugmentWide", "AugMix", "ScaleJitter", "ElasticTransform",
    "GaussianBlur", "GaussianNoise", "MixUp", "CutMix", "JPEG", "Lambda",
})
"""torchvision transforms that draw random numbers although their name does not start with ``Random``
(``Lambda`` runs arbitrary code, so it counts as random)."""

_GENERIC_BASES = frozenset({"Transform", "Module", "object", "Compose"})
_CONTAINER_ATTRIBUTES = ("transforms",)
_DATASET_PIPELINE_ATTRIBUTES = ("pipeline", "transform", "target_transform", "transforms")
_WRAPPED_DATASET_ATTRIBUTES = ("dataset", "datasets")


def random_parts(dataset: Any) -> list[str] | None:
    """The names of what makes reading ``dataset`` random; ``[]`` when nothing does, None when it cannot tell.

    None (seed to be safe) is the answer for a dataset that neither declares
    ``is_random`` nor keeps its transforms in ``pipeline``/``transform``/``transforms``:
    a hand-written ``__getitem__`` may flip a coin itself.
    """
    found: list[str] = []
    if not _collect_dataset(dataset, found, depth=0):
        return None
    return found


def _collect_dataset(dataset: Any, found: list[str], depth: int) -> bool:
    """Add ``dataset``'s random parts to ``found``; False when it cannot tell."""
    if depth > 8:
        return False
    declared = getattr(type(dataset), "is_random", None)
    if isinstance(declared, bool):
        if declared:
            found.append(type(dataset).__name__)
        return True
    inner = [getattr(dataset, name) for name in _WRAPPED_DATASET_ATTRIBUTES if _own_attribute(dataset, name)]
    if inner:  # wrappers (RepeatDataset, ConcatDataset, Subset, SeededDataset) read through to what they wrap
        children = [d for value in inner for d in (value if isinstance(value, (list, tuple)) else [value])]
        return all(_collect_dataset(child, found, depth + 1) for child in children)
    pipelines = [getattr(dataset, name) for name in _DATASET_PIPELINE_ATTRIBUTES if _own_attribute(dataset, name)]
    if not pipelines:
        return False
    for pipeline in pipelines:
        found.extend(_random_transforms(pipeline))
    return True


def _own_attribute(obj: Any, name: str) -> bool:
    return name in getattr(obj, "__dict__", {})


def _random_transforms(transform: Any) -> Iterator[str]:
    """Names of the random transforms inside ``transform`` (a Compose is looked through)."""
    if transform is None:
        return
    if type(transform).__name__ == "StandardTransform":  # torchvision datasets' pair of transform and target_transform
        yield from _random_transforms([transform.transform, transform.target_transform])
        return
    if isinstance(transform, (list, tuple)):
        for item in transform:
            yield from _random_transforms(item)
        return
    verdict = _declared_or_known(type(transform))
    if verdict is True:
        yield type(transform).__name__
        return
    if verdict is None:
        children = next((getattr(transform, a) for a in _CONTAINER_ATTRIBUTES if isinstance(getattr(transform, a, None), (list, tuple))), None)
        if children is None or type(transform).__name__ not in _GENERIC_BASES:
            yield f"{type(transform).__name__} (declares no is_random)"
            return
        yield from _random_transforms(children)


def _declared_or_known(cls: type) -> bool | None:
    """True (random), False (deterministic) or None (a container, or unknown) for a transform class."""
    for klass in cls.__mro__:
        declared = klass.__dict__.get("is_random")
        if isinstance(declared, bool):
            return declared
        if klass.__module__.startswith("torchvision.transforms") and klass.__name__ not in _GENERIC_BASES:
            return klass.__name__.startswith("Random") or klass.__name__ in RANDOM_TORCHVISION_TRANSFORMS
    return None
