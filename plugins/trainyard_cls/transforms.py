"""Batch transforms: MixUp and CutMix from ``torchvision.transforms.v2``, on the device.

Sample transforms are ``torchvision.transforms.v2``'s (registered automatically):
``RandomResizedCrop``, ``RandomHorizontalFlip``, ``TrivialAugmentWide``,
``RandAugment``, ``RandomErasing``, ``Resize``, ``CenterCrop``...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from trainyard import TRANSFORMS
from trainyard.registry import building

BatchAugment = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def build_batch_augments(configs: Sequence[Mapping[str, Any]] | None, num_classes: int) -> BatchAugment | None:
    """One of the configured batch transforms, chosen at random for each batch.

    Each config is a ``TRANSFORMS`` entry taking ``(images, labels)`` and returning
    soft labels ``[B, num_classes]``: ``dict(type='MixUp', alpha=0.2)``,
    ``dict(type='CutMix', alpha=1.0)``. ``num_classes`` comes from the model.
    """
    if not configs:
        return None
    from torchvision.transforms import v2

    augments = []
    for index, cfg in enumerate(configs):
        with building(f"data_preprocessor.batch_augments[{index}]"):
            augments.append(TRANSFORMS.build(cfg, num_classes=num_classes))
    return augments[0] if len(augments) == 1 else v2.RandomChoice(augments)
