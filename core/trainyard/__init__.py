"""trainyard: a plugin-based training framework for PyTorch with MMEngine-style configs.

Importing trainyard is cheap: registries, errors and the plugin marker load now;
the Runner, hooks, config loader and everything that needs torch load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from trainyard import core_components as _core_components  # noqa: F401  (lazy registrations)
from trainyard.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    ExportError,
    ModelContractError,
    NonFiniteError,
    PluginError,
    PretrainedWeightsError,
    RegistryError,
    TrainyardError,
)
from trainyard.plugins import hookimpl
from trainyard.registry import (
    COLLATE_FUNCTIONS,
    DATA_SAMPLERS,
    DATASETS,
    HOOKS,
    LOOPS,
    METRICS,
    MODELS,
    OPTIMIZERS,
    SCHEDULERS,
    TASKS,
    TRANSFORMS,
    Registry,
)

__version__ = "0.1.0"

# Public names that need torch or mmengine, imported when first used.
_LAZY_EXPORTS: dict[str, str] = {
    "load_config": "trainyard.config",
    "validate_config": "trainyard.config",
    "explain": "trainyard.config",
    "Runner": "trainyard.runner",
    "Hook": "trainyard.hooks",
    "VisualizationHook": "trainyard.hooks",
    "Metric": "trainyard.evaluation",
    "SumMetric": "trainyard.evaluation",
    "GatherMetric": "trainyard.evaluation",
    "build_pipeline": "trainyard.data",
    "to_device": "trainyard.data",
    "ImageDataPreprocessor": "trainyard.preprocess",
    "read_image": "trainyard.images",
    "under_data_root": "trainyard.dataset_paths",
    "data_prefix_folders": "trainyard.dataset_paths",
    "load_pretrained_weights": "trainyard.checkpoint",
    "read_full_checkpoint": "trainyard.checkpoint",
    "TrainingInterrupted": "trainyard.interrupts",
    "Predictor": "trainyard.inference",
    "Task": "trainyard.inference",
    "draw_confusion_matrix": "trainyard.confusion_matrix",
    "export_model": "trainyard.export",
}


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trainyard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))


__all__ = [
    "__version__",
    "hookimpl",
    "Registry",
    "MODELS",
    "DATASETS",
    "TRANSFORMS",
    "METRICS",
    "HOOKS",
    "LOOPS",
    "OPTIMIZERS",
    "SCHEDULERS",
    "DATA_SAMPLERS",
    "COLLATE_FUNCTIONS",
    "TASKS",
    "TrainyardError",
    "ConfigError",
    "RegistryError",
    "PluginError",
    "CheckpointError",
    "DatasetError",
    "ExportError",
    "ModelContractError",
    "NonFiniteError",
    "PretrainedWeightsError",
    *_LAZY_EXPORTS,
]
