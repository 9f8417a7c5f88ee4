"""Entry point of the built-in semantic segmentation plugin (``trainyard_seg``).

It registers through the same hooks as a third-party plugin, lazily, and imports
only trainyard's public API.
"""

from trainyard import hookimpl

_MODELS = {
    "UNet": "trainyard_seg.models.unet:UNet",
    "FCNResNet50": "trainyard_seg.models.torchvision_models:FCNResNet50",
    "DeepLabV3ResNet50": "trainyard_seg.models.torchvision_models:DeepLabV3ResNet50",
    "DeepLabV3MobileNetV3": "trainyard_seg.models.torchvision_models:DeepLabV3MobileNetV3",
    "LRASPPMobileNetV3": "trainyard_seg.models.torchvision_models:LRASPPMobileNetV3",
    "SegTTAModel": "trainyard_seg.tta:SegTTAModel",
}
_DATASETS = {
    "ShapesDataset": "trainyard_seg.datasets.shapes:ShapesDataset",
    "FolderSegDataset": "trainyard_seg.datasets.folder:FolderSegDataset",
    "VOCSegDataset": "trainyard_seg.datasets.voc:VOCSegDataset",
    "CityscapesDataset": "trainyard_seg.datasets.cityscapes:CityscapesDataset",
}
_TRANSFORMS = {
    "SegRandomCrop": "trainyard_seg.transforms:SegRandomCrop",
    "SegPad": "trainyard_seg.transforms:SegPad",
}


@hookimpl
def register_models(registry):
    registry.register_lazy_many(_MODELS)


@hookimpl
def register_datasets(registry):
    registry.register_lazy_many(_DATASETS)


@hookimpl
def register_transforms(registry):
    registry.register_lazy_many(_TRANSFORMS)


@hookimpl
def register_metrics(registry):
    registry.register_lazy("IoUMetric", "trainyard_seg.metrics:IoUMetric")


@hookimpl
def register_hooks(registry):
    registry.register_lazy("SegVisualizationHook", "trainyard_seg.visualization:SegVisualizationHook")


@hookimpl
def register_tasks(registry):
    registry.register_lazy("segmentation", "trainyard_seg.inference:SegTask")
