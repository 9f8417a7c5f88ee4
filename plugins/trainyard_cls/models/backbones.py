"""Backbones by name from torchvision's and timm's model zoos, built without downloads.

Each returns logits ``[B, num_classes]`` for images ``[B, 3, H, W]``. Weights come
only from a local file (the classifier's ``checkpoint``, or ``load_from``).
"""

from __future__ import annotations

import difflib
from typing import Any

import torch
from torch import nn

from trainyard import ConfigError


def _unknown_name(kind: str, name: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known names include {', '.join(known[:12])}, ..."
    return ConfigError(f"{kind}: no model named {name!r}{hint}")


class TorchvisionBackbone(nn.Module):
    """``torchvision.models.get_model(name, weights=None, num_classes=...)``.

    Any classification builder: ``resnet18``, ``resnet50``, ``mobilenet_v3_small``,
    ``efficientnet_b0``, ``convnext_tiny``, ``vit_b_16`` (give ``image_size`` for
    inputs other than 224), ...

    Args:
        name: the builder's name (``torchvision.models.list_models(torchvision.models)``).
        num_classes: output classes (set by the classifier).
        small_input: for ResNets on 32x32 images (CIFAR): a 3x3 stride-1 first
            convolution and no max pooling, so the last feature map is 4x4, not 1x1.
        **builder_args: passed to the builder (``dropout``, ``image_size``, ...).
    """

    def __init__(self, name: str, num_classes: int, small_input: bool = False, **builder_args: Any) -> None:
        super().__init__()
        import torchvision

        known = torchvision.models.list_models(module=torchvision.models)
        if name not in known:
            raise _unknown_name("TorchvisionBackbone", name, known)
        try:
            self.net = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **builder_args)
        except TypeError as exc:
            raise ConfigError(f"TorchvisionBackbone {name!r} does not take the arguments {sorted(builder_args)}: {exc}") from None
        if small_input:
            if not (hasattr(self.net, "conv1") and hasattr(self.net, "maxpool")):
                raise ConfigError(f"TorchvisionBackbone: small_input=True is for ResNets (conv1 + maxpool); {name!r} has no such stem")
            width = self.net.conv1.out_channels
            self.net.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
            self.net.maxpool = nn.Identity()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)


class TimmBackbone(nn.Module):
    """``timm.create_model(name, pretrained=False, num_classes=...)``; needs ``pip install 'trainyard[cls]'``.

    Args:
        name: any of ``timm.list_models()``.
        num_classes: output classes (set by the classifier).
        **model_args: passed to ``timm.create_model`` (``drop_rate``, ``img_size``, ...).
    """

    def __init__(self, name: str, num_classes: int, **model_args: Any) -> None:
        super().__init__()
        try:
            import timm
        except ImportError:
            raise ConfigError(
                f"TimmBackbone({name!r}) needs the timm package, which is not installed: "
                "pip install 'trainyard[cls]' (or pip install timm)"
            ) from None
        if not timm.is_model(name):
            raise _unknown_name("TimmBackbone", name, timm.list_models())
        try:
            self.net = timm.create_model(name, pretrained=False, num_classes=num_classes, **model_args)
        except TypeError as exc:
            raise ConfigError(f"TimmBackbone {name!r} does not take the arguments {sorted(model_args)}: {exc}") from None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)
