"""torchvision's segmentation models behind trainyard's model contract, built without downloads.

Weights come only from a local file: ``weights_path`` here (a torchvision state dict,
loaded before training) or ``load_from`` in the config.
"""

from __future__ import annotations

import inspect
from typing import Any

from torchvision.models import segmentation

from trainyard import ConfigError
from trainyard.checkpoint import load_pretrained_weights
from trainyard_seg.models.segmentor import Segmentor


class TorchvisionSegmentor(Segmentor):
    """Wraps ``torchvision.models.segmentation.<builder>`` (``weights=None``, ``weights_backbone=None``).

    Args:
        num_classes: output classes.
        aux_loss: build the auxiliary head (FCN, DeepLabV3) and add its loss.
        weights_path: a local torchvision state dict for the whole model; keys that
            do not fit (the classifier for another class count) are reported and skipped.
    """

    builder = ""

    def __init__(self, num_classes: int, aux_loss: bool = False, weights_path: str | None = None,
                 data_preprocessor: dict | None = None, dice_weight: float = 0.0, **builder_args: Any) -> None:
        super().__init__(num_classes, data_preprocessor=data_preprocessor, dice_weight=dice_weight)
        build = getattr(segmentation, self.builder)
        accepted = [name for name, p in inspect.signature(build).parameters.items() if p.kind is p.KEYWORD_ONLY and not name.startswith("weights")]
        unknown = sorted(set(builder_args) - set(accepted))
        if unknown:
            # torchvision's builders take **kwargs and drop what they do not know: a typo would pass silently
            raise ConfigError(
                f"{type(self).__name__} got unknown arguments {unknown}; accepted: num_classes, aux_loss, weights_path, "
                f"data_preprocessor, dice_weight{''.join(', ' + a for a in accepted if a not in ('num_classes', 'aux_loss'))}"
            )
        options = {"weights": None, "weights_backbone": None, "num_classes": num_classes, **builder_args}
        if aux_loss:
            options["aux_loss"] = True
        self.net = build(**options)
        if weights_path:
            load_pretrained_weights(self.net, weights_path)

    def logits(self, inputs):
        return dict(self.net(inputs))


class FCNResNet50(TorchvisionSegmentor):
    builder = "fcn_resnet50"


class DeepLabV3ResNet50(TorchvisionSegmentor):
    builder = "deeplabv3_resnet50"


class DeepLabV3MobileNetV3(TorchvisionSegmentor):
    builder = "deeplabv3_mobilenet_v3_large"


class LRASPPMobileNetV3(TorchvisionSegmentor):
    builder = "lraspp_mobilenet_v3_large"
