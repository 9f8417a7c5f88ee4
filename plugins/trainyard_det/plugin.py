"""Entry point of the built-in object detection plugin (``trainyard_det``).

It registers through the same hooks as a third-party plugin, lazily, and imports
only trainyard's public API.
"""

from trainyard import hookimpl

_MODELS = {
    "FasterRCNN": "trainyard_det.models.detectors:FasterRCNN",
    "RetinaNet": "trainyard_det.models.detectors:RetinaNet",
    "FCOS": "trainyard_det.models.detectors:FCOS",
    "SSDlite": "trainyard_det.models.detectors:SSDlite",
    "SmallDetBackbone": "trainyard_det.models.backbones:SmallDetBackbone",
    "DetTTAModel": "trainyard_det.tta:DetTTAModel",
}
_DATASETS = {
    "CocoDetection": "trainyard_det.datasets.coco:CocoDetection",
    "VOCDetection": "trainyard_det.datasets.voc:VOCDetection",
    "GeneratedDetDataset": "trainyard_det.datasets.generated:GeneratedDetDataset",
}


@hookimpl
def register_models(registry):
    registry.register_lazy_many(_MODELS)


@hookimpl
def register_datasets(registry):
    registry.register_lazy_many(_DATASETS)


@hookimpl
def register_transforms(registry):
    registry.register_lazy("ResizeKeepRatio", "trainyard_det.transforms:ResizeKeepRatio")


@hookimpl
def register_metrics(registry):
    registry.register_lazy("CocoMetric", "trainyard_det.metrics:CocoMetric")


@hookimpl
def register_hooks(registry):
    registry.register_lazy("DetVisualizationHook", "trainyard_det.visualization:DetVisualizationHook")


@hookimpl
def register_tasks(registry):
    registry.register_lazy("detection", "trainyard_det.inference:DetTask")
