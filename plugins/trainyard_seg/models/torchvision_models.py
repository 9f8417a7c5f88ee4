"""torchvision's segmentation models behind trainyard's model contract.

Pretrained weights come from torchvision's weights API through torch.hub's cache
(``weights``, ``weights_backbone``; see :mod:`trainyard.pretrained`) or from a local
file: ``checkpoint`` here (a torchvision state dict) or ``load_from`` in the config.
"""

from __future__ import annotations

import inspect
from typing import Any

from torchvision.models import segmentation

from trainyard import ConfigError
from trainyard.checkpoint import load_pretrained_weights
from trainyard.pretrained import load_torchvision_weights, torchvision_loading, torchvision_weights
from trainyard.deprecation import renamed_argument
from trainyard.openmmlab_names import model_keys_hint
from trainyard_seg.models.segmentor import Segmentor


class TorchvisionSegmentor(Segmentor):
    """Wraps ``torchvision.models.segmentation.<builder>``.

    Args:
        num_classes: output classes.
        aux_loss: build the auxiliary head (FCN, DeepLabV3) and add its loss.
        weights: torchvision's weights of the whole model (``'COCO_WITH_VOC_LABELS_V1'``,
            ``'DEFAULT'``): the model is built for ``num_classes`` and the weights loaded
            into it; the classifiers for another class count are re-initialised (and an
            auxiliary head the model does not build is left out), all logged by key.
        weights_backbone: torchvision's weights of the backbone (``'IMAGENET1K_V1'``),
            loaded by torchvision's builder, as its reference scripts train.
        checkpoint: a local torchvision state dict for the whole model; keys that
            do not fit (the classifier for another class count) are reported and skipped.
        weights_path: the old name of ``checkpoint``, deprecated.
        test_cfg: ``dict(mode='slide', crop_size=(h, w), stride=(h, w))`` for sliding-window
            inference (default: the whole image).
    """

    builder = ""

    def __init__(self, num_classes: int, aux_loss: bool = False, checkpoint: str | None = None,
                 data_preprocessor: dict | None = None, dice_weight: float = 0.0, weights_path: str | None = None,
                 weights: str | None = None, weights_backbone: str | None = None, test_cfg: dict | None = None,
                 **builder_args: Any) -> None:
        super().__init__(num_classes, data_preprocessor=data_preprocessor, dice_weight=dice_weight, test_cfg=test_cfg)
        if weights_path is not None:
            checkpoint = renamed_argument(type(self).__name__, "weights_path", "checkpoint", weights_path)
        build = getattr(segmentation, self.builder)
        accepted = [name for name, p in inspect.signature(build).parameters.items() if p.kind is p.KEYWORD_ONLY and not name.startswith("weights")]
        unknown = sorted(set(builder_args) - set(accepted))
        if unknown:
            # torchvision's builders take **kwargs and drop what they do not know: a typo would pass silently
            raise ConfigError(
                f"{type(self).__name__} got unknown arguments {unknown}; accepted: num_classes, aux_loss, weights, weights_backbone, "
                f"checkpoint, data_preprocessor, dice_weight, test_cfg{''.join(', ' + a for a in accepted if a not in ('num_classes', 'aux_loss'))}"
                + (f". {hint}" if (hint := model_keys_hint(unknown)) else "")
            )
        where = type(self).__name__
        whole = torchvision_weights(build, weights) if weights else None
        backbone = torchvision_weights(build, weights_backbone, "weights_backbone") if weights_backbone else None
        options = {"weights": None, "weights_backbone": backbone, "num_classes": num_classes, **builder_args}
        if aux_loss:
            options["aux_loss"] = True
        with torchvision_loading(where):
            self.net = build(**options)
        if whole is not None:
            load_torchvision_weights(self.net, whole, where)
        if checkpoint:
            load_pretrained_weights(self.net, checkpoint)

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
