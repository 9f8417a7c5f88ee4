"""Entry point of the built-in image classification plugin (``trainyard_cls``).

It registers through the same hooks as a third-party plugin, lazily, and imports
only trainyard's public API.
"""

from trainyard import hookimpl

_MODELS = {
    "ImageClassifier": "trainyard_cls.models.classifier:ImageClassifier",
    "TorchvisionBackbone": "trainyard_cls.models.backbones:TorchvisionBackbone",
    "TimmBackbone": "trainyard_cls.models.backbones:TimmBackbone",
    "SmallCNN": "trainyard_cls.models.small_cnn:SmallCNN",
    "ClsTTAModel": "trainyard_cls.tta:ClsTTAModel",
}
_DATASETS = {
    "ImageFolder": "trainyard_cls.datasets.folder:ImageFolder",
    "FileListDataset": "trainyard_cls.datasets.file_list:FileListDataset",
    "CIFAR10": "trainyard_cls.datasets.cifar:CIFAR10",
    "CIFAR100": "trainyard_cls.datasets.cifar:CIFAR100",
    "MNIST": "trainyard_cls.datasets.mnist:MNIST",
    "FashionMNIST": "trainyard_cls.datasets.mnist:FashionMNIST",
    "GeneratedClsDataset": "trainyard_cls.datasets.generated:GeneratedClsDataset",
}
_METRICS = {
    "Accuracy": "trainyard_cls.metrics:Accuracy",
    "ClassificationReport": "trainyard_cls.metrics:ClassificationReport",
}


@hookimpl
def register_models(registry):
    registry.register_lazy_many(_MODELS)


@hookimpl
def register_datasets(registry):
    registry.register_lazy_many(_DATASETS)


@hookimpl
def register_metrics(registry):
    registry.register_lazy_many(_METRICS)


@hookimpl
def register_hooks(registry):
    registry.register_lazy("ClsVisualizationHook", "trainyard_cls.visualization:ClsVisualizationHook")


@hookimpl
def register_tasks(registry):
    registry.register_lazy("classification", "trainyard_cls.inference:ClsTask")
