"""Backbones by name from torchvision's and timm's model zoos.

Each returns logits ``[B, num_classes]`` for images ``[B, 3, H, W]``. Pretrained
weights come from the zoo's own cache (``weights='IMAGENET1K_V1'`` through torch.hub's,
``pretrained=True`` through Hugging Face's; see :mod:`trainyard.pretrained`) or from a
local file (the classifier's ``checkpoint``, ``init_cfg``, or ``load_from``).
"""

from __future__ import annotations

import contextlib
import difflib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainyard import CheckpointError, ConfigError, PretrainedWeightsError
from trainyard.pretrained import (fetch_weights, hf_file, load_torchvision_weights, read_weights, torchvision_weights,
                                  weights_come_from_checkpoint)


def _unknown_name(kind: str, name: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known names include {', '.join(known[:12])}, ..."
    return ConfigError(f"{kind}: no model named {name!r}{hint}")


class TorchvisionBackbone(nn.Module):
    """``torchvision.models.get_model(name, num_classes=...)``, from scratch or from torchvision's weights.

    Any classification builder: ``resnet18``, ``resnet50``, ``mobilenet_v3_small``,
    ``efficientnet_b0``, ``convnext_tiny``, ``vit_b_16`` (give ``image_size`` for
    inputs other than 224), ...

    Args:
        name: the builder's name (``torchvision.models.list_models(torchvision.models)``).
        num_classes: output classes (set by the classifier).
        weights: torchvision's weights for this builder (``'IMAGENET1K_V1'``,
            ``'DEFAULT'``, ``'ResNet50_Weights.IMAGENET1K_V2'``), from torch.hub's cache.
            The model is built for ``num_classes`` and the weights loaded into it: a
            head for another class count (and a ``small_input`` stem) stays freshly
            initialised, and the log lists those keys. Arguments the weights imply in
            torchvision (``transform_input`` for Inception) are to be given here.
        small_input: for ResNets on 32x32 images (CIFAR): a 3x3 stride-1 first
            convolution and no max pooling, so the last feature map is 4x4, not 1x1.
        **builder_args: passed to the builder (``dropout``, ``image_size``, ...).
    """

    def __init__(self, name: str, num_classes: int, weights: str | None = None, small_input: bool = False,
                 **builder_args: Any) -> None:
        super().__init__()
        import torchvision

        known = torchvision.models.list_models(module=torchvision.models)
        if name not in known:
            raise _unknown_name("TorchvisionBackbone", name, known)
        pretrained = torchvision_weights(torchvision.models.get_model_builder(name), weights) if weights else None
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
        if pretrained is not None:
            load_torchvision_weights(self.net, pretrained, f"TorchvisionBackbone({name!r})")

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)


class TimmBackbone(nn.Module):
    """``timm.create_model(name, pretrained=..., num_classes=...)``; needs ``pip install 'trainyard[cls]'``.

    Args:
        name: any of ``timm.list_models()``, with a weights tag where it has several
            (``'resnet18.a1_in1k'``).
        num_classes: output classes (set by the classifier).
        pretrained: start from timm's weights for ``name``: the file comes from the
            Hugging Face cache (``$HF_HOME/hub``, downloaded when online) or, for the
            few models without a hub copy, from its URL through torch.hub's cache.
            timm adapts it (a classifier for another class count is re-initialised).
        pretrained_cfg_overlay: timm's overrides of the weights' description;
            ``dict(file='path/to/model.safetensors')`` takes a local file instead.
        **model_args: passed to ``timm.create_model`` (``drop_rate``, ``img_size``, ...).
    """

    def __init__(self, name: str, num_classes: int, pretrained: bool = False,
                 pretrained_cfg_overlay: dict[str, Any] | None = None, **model_args: Any) -> None:
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
        overlay = dict(pretrained_cfg_overlay or {})
        pretrained = pretrained and not weights_come_from_checkpoint()  # the checkpoint's weights replace them
        if pretrained:
            path = _timm_weights_file(name, overlay)
            overlay = {**overlay, "file": None, "state_dict": read_weights(path)}  # read here, safely; timm adapts it
        try:
            with _timm_messages() as messages:
                self.net = timm.create_model(name, pretrained=pretrained, num_classes=num_classes,
                                             pretrained_cfg_overlay=overlay or None, **model_args)
        except TypeError as exc:
            raise ConfigError(f"TimmBackbone {name!r} does not take the arguments {sorted(model_args)}: {exc}") from None
        except RuntimeError as exc:  # timm's strict load of a file that is not this model's
            if not pretrained:
                raise
            raise CheckpointError(f"TimmBackbone {name!r}: the weights from {path} do not fit: {str(exc).splitlines()[0][:300]}") from None
        if pretrained:
            self.net.pretrained_cfg.pop("state_dict", None)  # timm keeps its overlay: not a second copy of the weights
            logger = logging.getLogger("trainyard")
            for level, message in messages:
                logger.log(level, f"TimmBackbone({name!r}): timm: {message}")
            unexpected = any(message.startswith("Unexpected keys") for _, message in messages)
            logger.info(f"TimmBackbone({name!r}): loaded timm's pretrained weights from {path}; "
                        + ("timm reported unexpected keys (above)" if unexpected else "0 unexpected keys"))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)


def _timm_weights_file(name: str, overlay: dict[str, Any]) -> Path:
    """The local file of timm's weights for ``name``: the overlay's ``file``, the Hugging Face cache, or torch.hub's."""
    from timm.models import get_pretrained_cfg

    if overlay.get("file"):
        path = Path(overlay["file"]).expanduser()
        if not path.is_file():
            raise PretrainedWeightsError(f"TimmBackbone({name!r}): pretrained_cfg_overlay file {path} does not exist")
        return path
    described = get_pretrained_cfg(name)
    cfg = {**(described.to_dict() if described is not None else {}), **overlay}
    what = f"TimmBackbone({name!r}, pretrained=True)"
    if cfg.get("hf_hub_id"):
        names = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else ["model.safetensors", "pytorch_model.bin"]
        return hf_file(cfg["hf_hub_id"], names, what, ", or download it anywhere and give pretrained_cfg_overlay=dict(file=PATH)")
    if cfg.get("url"):
        return fetch_weights(cfg["url"], what)
    raise ConfigError(f"{what}: timm has no pretrained weights for {name!r}; give pretrained_cfg_overlay=dict(file=...) or pretrained=False")


@contextlib.contextmanager
def _timm_messages() -> Iterator[list[tuple[int, str]]]:
    """timm's own messages while it builds and loads (missing, unexpected, adapted keys), to repeat in trainyard's log."""
    messages: list[tuple[int, str]] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append((record.levelno, record.getMessage()))  # type: ignore[method-assign]
    timm_logger = logging.getLogger("timm")
    level, propagate = timm_logger.level, timm_logger.propagate
    timm_logger.addHandler(handler)
    timm_logger.setLevel(logging.INFO)
    timm_logger.propagate = False
    try:
        yield messages
    finally:
        timm_logger.removeHandler(handler)
        timm_logger.setLevel(level)
        timm_logger.propagate = propagate
