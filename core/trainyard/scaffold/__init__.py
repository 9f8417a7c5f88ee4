"""``trainyard new-plugin``: a ready plugin project, from templates that ship with trainyard.

The generated project is a complete plugin: ``pyproject.toml`` with the entry point
and the configs as package data, a model, a dataset and a metric that follow the
contract in ``docs/plugins.md``, a config inheriting
``trainyard::_base_/default_runtime.py``, a README and tests that pass as generated.
Templates are plain files with ``{{placeholders}}``, so what a user gets is what
the documentation shows.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from pathlib import Path

from trainyard.errors import ConfigError

__all__ = ["TASKS", "generate", "names_for"]

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class TaskTemplate:
    """What one ``--task`` generates: component names (after the prefix) and their descriptions."""

    summary: str
    model: str
    dataset: str
    metric: str
    main_metric: str
    model_text: str
    dataset_text: str
    metric_text: str


TASKS: dict[str, TaskTemplate] = {
    "cls": TaskTemplate(
        "Image classification", "Classifier", "Shapes", "Accuracy", "accuracy",
        "a small CNN: images in, class logits out", "generated images of three shapes, no files",
        "top-1 accuracy (a `SumMetric`)",
    ),
    "seg": TaskTemplate(
        "Semantic segmentation", "Segmenter", "Blobs", "IoU", "mIoU",
        "a small encoder-decoder: a class per pixel", "generated images with label maps, no files",
        "per-class and mean IoU from a confusion matrix (a `SumMetric`)",
    ),
    "det": TaskTemplate(
        "Object detection", "Detector", "Boxes", "Recall", "recall",
        "torchvision's Faster R-CNN on a small backbone", "generated images with boxes, no files",
        "recall and precision at IoU 0.5 (a `GatherMetric`)",
    ),
    "blank": TaskTemplate(
        "Regression on 1-D signals", "Regressor", "Signals", "MeanError", "mae",
        "an MLP on feature vectors: the minimal model", "generated noisy sine waves, no files",
        "mean absolute and RMS error (a `SumMetric`)",
    ),
}

# template file -> where it goes in the project ({package} is the import package)
LAYOUT: dict[str, str] = {
    "common/pyproject.toml.tmpl": "pyproject.toml",
    "common/README.md.tmpl": "README.md",
    "common/__init__.py.tmpl": "{package}/__init__.py",
    "common/plugin.py.tmpl": "{package}/plugin.py",
    "{task}/models.py.tmpl": "{package}/models.py",
    "{task}/datasets.py.tmpl": "{package}/datasets.py",
    "{task}/metrics.py.tmpl": "{package}/metrics.py",
    "{task}/quick.py.tmpl": "{package}/configs/quick.py",
    "common/test_plugin.py.tmpl": "tests/test_plugin.py",
    "{task}/test_components.py.tmpl": "tests/test_components.py",
}


def names_for(project: str) -> dict[str, str]:
    """Distribution, import package, entry-point name and class-name prefix of a project name.

    ``acme-signals`` gives the package and plugin ``acme_signals`` and the prefix
    ``AcmeSignals`` (so the model is ``AcmeSignalsRegressor``: distinctive, as
    registry names of plugins should be).
    """
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", project):
        raise ConfigError(
            f"plugin name {project!r}: use letters, digits, '-', '_' or '.', starting with a letter (e.g. acme-signals)"
        )
    package = re.sub(r"[-.]+", "_", project).lower()
    if keyword.iskeyword(package) or package in ("trainyard", "torch", "torchvision", "tests", "test"):
        raise ConfigError(f"plugin name {project!r} gives the package name '{package}', which is taken; choose another")
    prefix = "".join(part[:1].upper() + part[1:] for part in re.split(r"[-._]+", project) if part)
    return {"project": project, "package": package, "plugin": package, "Prefix": prefix}


def generate(project: str, task: str, destination: Path) -> list[Path]:
    """Write the project for ``task`` into ``destination`` (which must not exist or be empty); returns the files."""
    if task not in TASKS:
        raise ConfigError(f"unknown --task {task!r}; choose one of {', '.join(TASKS)}")
    names = names_for(project)
    destination = Path(destination)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ConfigError(f"{destination} already exists and is not empty; nothing was written. Choose another --out")
    from trainyard import __version__

    template = TASKS[task]
    values = {
        **names,
        "task": task,
        "trainyard_version": __version__,
        "Model": names["Prefix"] + template.model,
        "Dataset": names["Prefix"] + template.dataset,
        "Metric": names["Prefix"] + template.metric,
        **{field: getattr(template, field) for field in ("summary", "main_metric", "model_text", "dataset_text", "metric_text")},
    }
    written = []
    for source, target in LAYOUT.items():
        text = (TEMPLATES / source.format(task=task)).read_text()
        path = destination / target.format(package=names["package"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(text, values))
        written.append(path)
    return written


def _fill(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda match: values[match.group(1)], text)
