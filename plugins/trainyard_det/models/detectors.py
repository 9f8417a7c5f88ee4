"""torchvision's detectors behind trainyard's model contract, built without downloads.

``forward(batch, mode='loss')`` returns torchvision's loss dict (every key named
``loss_*``); ``mode='predict'`` returns, per image, ``boxes`` (xyxy), ``scores`` and
``labels`` in the original image's pixels, also when the pipeline resized it.
Labels are contiguous ``0..K-1`` on the trainyard side; the background class some
torchvision heads expect is added and removed here.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from trainyard import MODELS, ConfigError, ImageDataPreprocessor, load_pretrained_weights
from trainyard.checkpoint import load_pretrained_state
from trainyard.openmmlab_names import model_keys_hint
from trainyard.pretrained import torchvision_loading, torchvision_weights
from trainyard.registry import building


class TorchvisionDetector(nn.Module):
    """Base class: a torchvision detector chosen by ``variant``, or built around a ``backbone`` from ``MODELS``.

    Args:
        num_classes: object classes, without background.
        variant: the torchvision architecture (see each subclass's ``variants``).
        backbone: instead of a variant, ``MODELS`` config of a backbone following
            torchvision's contract (``out_channels``; returns a dict of feature maps).
        checkpoint: a local torchvision (or trainyard) state dict of this detector;
            keys whose shape differs (the class heads, for another class count) keep
            their fresh initialisation and are reported by key. Nothing is downloaded.
        weights_backbone: torchvision's weights of the variant's backbone
            (``'IMAGENET1K_V1'``), as torchvision's reference scripts and mmdet start.
            torchvision's builder loads them and keeps its semantics: FrozenBatchNorm2d
            and ``trainable_backbone_layers=3`` unless given.
        weights: torchvision's weights of the whole detector (``'COCO_V1'``,
            ``'DEFAULT'``); the builder loads them, then the class head (``class_head``)
            is rebuilt for ``num_classes``, keeping every weight whose shape fits.
            Both come from torch.hub's cache (see :mod:`trainyard.pretrained`).
        min_size, max_size: torchvision's internal resize (short side, long side cap).
        anchor_sizes, aspect_ratios: per feature map, e.g. ``((32,), (64,), ...)``.
        score_thresh, nms_thresh, detections_per_img: post-processing of predictions.
        data_preprocessor: ``dict(mean=..., std=...)`` on the 0-255 scale; the default
            scales to 0-1, and torchvision then normalises with ImageNet statistics.
        **detector_args: other keyword arguments of the torchvision class.
    """

    task = "detection"
    """The name of this model's :class:`trainyard.inference.Task` in ``TASKS`` (predict, export)."""
    default_tta_model = "DetTTAModel"
    """What ``--tta`` wraps the model in when the config has no ``tta_model`` (see :mod:`trainyard.tta`)."""
    variants: Mapping[str, str] = {}
    torchvision_class = ""
    class_head = "head.classification_head"
    """The sub-module whose shape depends on the class count, rebuilt after loading whole-detector ``weights``."""
    adds_background = False
    option_names: Mapping[str, str] = {
        "min_size": "min_size", "max_size": "max_size", "score_thresh": "score_thresh",
        "nms_thresh": "nms_thresh", "detections_per_img": "detections_per_img",
    }
    anchor_argument = "anchor_generator"
    extra_arguments: tuple[str, ...] = ("size_divisible", "fixed_size")  # GeneralizedRCNNTransform's, through **kwargs

    def __init__(self, num_classes: int, variant: str | None = None, backbone: Mapping[str, Any] | None = None,
                 checkpoint: str | None = None, weights_backbone: str | None = None, weights: str | None = None,
                 min_size: int | None = None, max_size: int | None = None,
                 anchor_sizes: Sequence[Sequence[int]] | None = None, aspect_ratios: Sequence[Sequence[float]] | None = None,
                 score_thresh: float | None = None, nms_thresh: float | None = None, detections_per_img: int | None = None,
                 data_preprocessor: Mapping[str, Any] | None = None, **detector_args: Any) -> None:
        super().__init__()
        from torchvision.models import detection

        self.num_classes = num_classes
        name = type(self).__name__
        settings = {"min_size": min_size, "max_size": max_size, "score_thresh": score_thresh,
                    "nms_thresh": nms_thresh, "detections_per_img": detections_per_img}
        options = dict(detector_args)
        for key, value in settings.items():
            if value is None:
                continue
            if key not in self.option_names:
                raise ConfigError(f"{name} does not take {key}")
            options[self.option_names[key]] = value
        if anchor_sizes is not None:
            from torchvision.models.detection.anchor_utils import AnchorGenerator

            ratios = aspect_ratios or ((0.5, 1.0, 2.0),) * len(anchor_sizes)
            options[self.anchor_argument] = AnchorGenerator(tuple(map(tuple, anchor_sizes)), tuple(map(tuple, ratios)))
        unknown = sorted(set(detector_args) - set(self.accepted_arguments()))
        if unknown:  # torchvision passes unknown keywords down to a **kwargs that ignores them: a typo would pass silently
            hint = model_keys_hint(unknown)
            raise ConfigError(f"{name} got unknown arguments {unknown}; accepted: {', '.join(self.accepted_arguments())}" + (f". {hint}" if hint else ""))
        component_configs = sorted(key for key, value in detector_args.items() if isinstance(value, Mapping) and "type" in value)
        if component_configs:  # torchvision takes modules there: an mmdet config dict would fail at the first forward
            raise ConfigError(
                f"{name}: {', '.join(component_configs)} given as OpenMMLab component configs (dict(type=...)); torchvision's "
                "detectors build their heads themselves: remove them and set num_classes, anchor_sizes, score_thresh, ... "
                "(see docs/migrating.md)"
            )
        classes = num_classes + 1 if self.adds_background else num_classes
        try:
            if backbone is not None:
                if weights or weights_backbone:
                    raise ConfigError(f"{name}: weights and weights_backbone are torchvision's weights of a variant; "
                                      "a custom backbone starts from its own (its init_cfg, for one)")
                with building("model.backbone"):
                    backbone_module = MODELS.build(backbone)
                self.net = self.around_backbone(backbone_module, classes, options)
            else:
                variant = variant or next(iter(self.variants))
                if variant not in self.variants:
                    raise ConfigError(f"{name}: unknown variant {variant!r}; choose one of {', '.join(self.variants)}")
                build = getattr(detection, self.variants[variant])
                self.net = self._build_variant(build, classes, options, weights, weights_backbone)
        except TypeError as exc:
            raise ConfigError(f"{name}: an argument does not fit ({exc}); accepted: {', '.join(self.accepted_arguments())}") from None
        self.data_preprocessor = ImageDataPreprocessor(**(data_preprocessor or {"mean": (0.0, 0.0, 0.0), "std": (255.0, 255.0, 255.0)}))
        if checkpoint:
            load_pretrained_weights(self.net, checkpoint, revise_keys=[(r"^module\.", ""), (r"^net\.", "")])

    def _build_variant(self, build: Any, classes: int, options: dict[str, Any], weights: str | None,
                       weights_backbone: str | None) -> nn.Module:
        """torchvision's builder, with its weights semantics, reading through trainyard's cache lookup and safe loader."""
        where = type(self).__name__
        backbone = torchvision_weights(build, weights_backbone, "weights_backbone") if weights_backbone else None
        if not weights:
            with torchvision_loading(where):
                return build(weights=None, weights_backbone=backbone, num_classes=classes, **options)
        whole = torchvision_weights(build, weights)
        with torchvision_loading(where):
            net = build(weights=whole, **options)  # for the weights' own classes, as torchvision builds it
        if len(whole.meta["categories"]) != classes:
            head = build(weights=None, weights_backbone=None, num_classes=classes, **options).get_submodule(self.class_head)
            load_pretrained_state(head, net.get_submodule(self.class_head).state_dict(),
                                  f"{where}.{self.class_head}: {whole}, rebuilt for {classes} classes")
            parent, _, attribute = self.class_head.rpartition(".")
            setattr(net.get_submodule(parent), attribute, head)
        return net

    def around_backbone(self, backbone: nn.Module, classes: int, options: dict[str, Any]) -> nn.Module:
        return self.detector_class()(backbone, classes, **options)

    @classmethod
    def detector_class(cls) -> type[nn.Module]:
        """The torchvision class, e.g. ``torchvision.models.detection.ssd.SSD`` for ``'ssd.SSD'``."""
        from torchvision.models import detection

        target: Any = detection
        for part in cls.torchvision_class.split("."):
            target = getattr(target, part)
        return target

    @classmethod
    def accepted_arguments(cls) -> list[str]:
        own = [p for p in inspect.signature(TorchvisionDetector.__init__).parameters if p not in ("self", "detector_args")]
        theirs = [p for p in inspect.signature(cls.detector_class().__init__).parameters
                  if p not in ("self", "backbone", "num_classes", "kwargs")]
        theirs += [*cls.extra_arguments, "trainable_backbone_layers"]
        return own + sorted(set(theirs) - set(own) - set(cls.option_names.values()))

    def forward(self, batch: dict[str, Any], mode: str = "loss") -> Any:
        images = list(batch["inputs"])
        offset = 1 if self.adds_background else 0
        if mode == "loss":
            if not self.training:
                raise RuntimeError(f"{type(self).__name__}: torchvision detectors compute losses in training mode only (call model.train())")
            targets = [{"boxes": t["boxes"], "labels": t["labels"] + offset} for t in batch["targets"]]
            losses = self.net(images, targets)
            return {(key if "loss" in key else f"loss_{key}"): value for key, value in losses.items()}
        if mode == "predict":
            outputs = self.net(images)
            metas = batch.get("meta") or [{}] * len(images)
            return [self._to_original(output, image, meta, offset) for output, image, meta in zip(outputs, images, metas)]
        raise ValueError(f"unknown mode {mode!r}; use 'loss' or 'predict'")

    @staticmethod
    def _to_original(output: dict[str, torch.Tensor], image: torch.Tensor, meta: Mapping[str, Any], offset: int) -> dict[str, torch.Tensor]:
        boxes = output["boxes"]
        height, width = image.shape[-2:]
        original_height, original_width = meta.get("ori_size", (height, width))
        if (original_height, original_width) != (height, width):
            scale = boxes.new_tensor([original_width / width, original_height / height] * 2)
            boxes = boxes * scale
        return {"boxes": boxes, "scores": output["scores"], "labels": output["labels"] - offset}


class FasterRCNN(TorchvisionDetector):
    """Faster R-CNN: ``resnet50_fpn`` (v1), ``resnet50_fpn_v2`` or ``mobilenet_v3_large_fpn``, or a ``backbone``.

    Around a ``backbone``, the RoI pooling reads its ``featmap_names`` (default
    ``['0']``), the anchors default to sizes 16-128 on each feature map, and
    ``representation_size`` narrows the box head (torchvision's is 1024 wide).
    """

    variants = {
        "resnet50_fpn": "fasterrcnn_resnet50_fpn",
        "resnet50_fpn_v2": "fasterrcnn_resnet50_fpn_v2",
        "mobilenet_v3_large_fpn": "fasterrcnn_mobilenet_v3_large_fpn",
    }
    torchvision_class = "FasterRCNN"
    class_head = "roi_heads.box_predictor"
    adds_background = True
    option_names = {"min_size": "min_size", "max_size": "max_size", "score_thresh": "box_score_thresh",
                    "nms_thresh": "box_nms_thresh", "detections_per_img": "box_detections_per_img"}
    anchor_argument = "rpn_anchor_generator"
    extra_arguments = ("size_divisible", "fixed_size", "representation_size")

    def around_backbone(self, backbone, classes, options):
        from torchvision.models.detection import FasterRCNN as TorchvisionFasterRCNN
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
        from torchvision.ops import MultiScaleRoIAlign

        names = list(getattr(backbone, "featmap_names", ["0"]))
        options.setdefault("rpn_anchor_generator", AnchorGenerator(((16, 32, 64, 128),) * len(names), ((0.5, 1.0, 2.0),) * len(names)))
        options.setdefault("box_roi_pool", MultiScaleRoIAlign(featmap_names=names, output_size=7, sampling_ratio=2))
        representation_size = options.pop("representation_size", None)
        if representation_size is not None:  # a box head narrower than torchvision's 1024
            options["box_head"] = TwoMLPHead(backbone.out_channels * 7 * 7, representation_size)
            options["box_predictor"] = FastRCNNPredictor(representation_size, classes)
            classes = None  # torchvision wants num_classes only without a box_predictor
        return TorchvisionFasterRCNN(backbone, classes, **options)


class RetinaNet(TorchvisionDetector):
    """RetinaNet: ``resnet50_fpn`` or ``resnet50_fpn_v2``, or a multi-level ``backbone`` with ``anchor_sizes``."""

    variants = {"resnet50_fpn": "retinanet_resnet50_fpn", "resnet50_fpn_v2": "retinanet_resnet50_fpn_v2"}
    torchvision_class = "RetinaNet"


class FCOS(TorchvisionDetector):
    """FCOS (anchor-free): ``resnet50_fpn``, or a ``backbone`` with one ``anchor_sizes`` entry per level."""

    variants = {"resnet50_fpn": "fcos_resnet50_fpn"}
    torchvision_class = "FCOS"


class SSDlite(TorchvisionDetector):
    """SSDlite 320 with MobileNetV3-Large (fixed 320x320 input; no ``min_size``/``max_size``)."""

    variants = {"mobilenet_v3_large": "ssdlite320_mobilenet_v3_large"}
    torchvision_class = "ssd.SSD"
    adds_background = True
    option_names = {"score_thresh": "score_thresh", "nms_thresh": "nms_thresh", "detections_per_img": "detections_per_img"}
