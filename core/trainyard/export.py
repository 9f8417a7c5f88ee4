"""Export a trained model for deployment, and prove each export by running it.

One function per format; each writes the file, loads it back with the runtime that
will serve it, runs it on sample images and compares its outputs with the PyTorch
model's. An export whose outputs differ by more than the tolerance is an
:class:`~trainyard.errors.ExportError`, never a file reported as done.

- ``onnx``: ``torch.onnx.export`` (needs the ``export`` extra: onnx, onnxscript,
  onnxruntime), checked in onnxruntime; dynamic batch size, and image size where
  the model allows.
- ``torchscript``: ``torch.jit.trace``, checked with ``torch.jit.load``.
- ``pt2``: a ``torch.export`` program, checked with ``torch.export.load``.
- ``safetensors``: the weights (``safetensors`` package) and a JSON file with the
  config, task, classes and input normalisation, checked by loading them into a
  model rebuilt from that JSON.

Exported models (all but safetensors) take what deployments have: float32 RGB
pixels ``[B,3,H,W]`` on the 0-255 scale. The normalisation of the model's data
preprocessor is inside the export.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainyard.errors import ExportError
from trainyard.inference import Predictor, Task

__all__ = ["FORMATS", "DeployModel", "ExportResult", "export_model", "export_sample"]

logger = logging.getLogger("trainyard")

FORMATS: dict[str, str] = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "pt2": ".pt2", "safetensors": ".safetensors"}
"""Each format and the file suffix it writes."""


class DeployModel(nn.Module):
    """Pixels in, the task's tensors out: the model's normalisation, then :meth:`Task.export_outputs`."""

    def __init__(self, model: nn.Module, task: Task) -> None:
        super().__init__()
        self.model = model
        self.task = task
        preprocessor = getattr(model, "data_preprocessor", None)
        mean = getattr(preprocessor, "mean", None)
        std = getattr(preprocessor, "std", None)
        self.register_buffer("mean", (mean if mean is not None else torch.zeros(3, 1, 1)).detach().clone().view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", (std if std is not None else torch.ones(3, 1, 1)).detach().clone().view(1, -1, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> Any:
        return self.task.export_outputs(self.model, (images - self.mean) / self.std)


@dataclass
class ExportResult:
    """What an export wrote and how closely it reproduced the PyTorch model."""

    format: str
    files: list[Path]
    max_abs_diff: float
    tolerance: float
    checks: list[str] = field(default_factory=list)
    """One line per verified input: its shape and max abs difference."""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.format}: {', '.join(str(f) for f in self.files)}",
                 f"  verified: max abs difference {self.max_abs_diff:.3g} (tolerance {self.tolerance:.3g})"]
        lines += [f"    {check}" for check in self.checks]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _outputs(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, torch.Tensor)]
    return [torch.as_tensor(v) for v in value]


def _difference(expected: Sequence[torch.Tensor], actual: Sequence[Any], what: str) -> float:
    if len(expected) != len(actual):
        raise ExportError(f"{what} returned {len(actual)} outputs, the PyTorch model {len(expected)}")
    worst = 0.0
    for index, (want, got) in enumerate(zip(expected, actual)):
        got = torch.as_tensor(got)
        if tuple(got.shape) != tuple(want.shape):
            raise ExportError(f"{what}: output {index} has shape {tuple(got.shape)}, the PyTorch model's {tuple(want.shape)}")
        if want.numel():
            worst = max(worst, (got.double() - want.double()).abs().max().item())
    return worst


def _verification_inputs(sample: torch.Tensor, dynamic_size: bool) -> list[torch.Tensor]:
    """The export's sample (a batch of 2), one image alone, and (when sizes may vary) a taller and wider batch."""
    inputs = [sample, sample[:1]]
    if dynamic_size:
        from torch.nn import functional as F

        height, width = sample.shape[-2:]
        inputs.append(F.interpolate(sample[:1], size=(height + 32, width + 32), mode="bilinear", align_corners=False).round())
    return inputs


def _verify(run: Callable[[torch.Tensor], Any], reference: nn.Module, inputs: Sequence[torch.Tensor], what: str,
            atol: float, rtol: float) -> tuple[float, float, list[str]]:
    worst, tolerance, checks = 0.0, 0.0, []
    for images in inputs:
        with torch.inference_mode():
            expected = [t.detach().cpu() for t in _outputs(reference(images))]
            try:
                with _quiet():
                    actual = [torch.as_tensor(t).detach().cpu() for t in _outputs(run(images))]
            except Exception as exc:  # noqa: BLE001 - a runtime's failure on a valid input is the export's failure
                raise ExportError(f"{what} fails on input {tuple(images.shape)}: {_why(exc)}") from None
        difference = _difference(expected, actual, f"{what} on input {tuple(images.shape)}")
        scale = max((t.abs().max().item() for t in expected if t.numel()), default=0.0)
        allowed = atol + rtol * scale
        checks.append(f"input {tuple(images.shape)}: max abs difference {difference:.3g} (outputs up to {scale:.3g})")
        if not difference <= allowed:
            raise ExportError(f"{what} does not reproduce the model: max abs difference {difference:.3g} on input "
                              f"{tuple(images.shape)} exceeds the tolerance {allowed:.3g}; the file was kept for inspection")
        worst, tolerance = max(worst, difference), max(tolerance, allowed)
    return worst, tolerance, checks


def _require(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"this export needs the '{module}' package: pip install 'trainyard[{extra}]'") from None


def _why(exc: BaseException) -> str:
    """The root cause's first line: exporters wrap the real reason in several layers."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and "TorchScript interpreter" in lines[0]:
        lines = lines[-1:]  # the interpreter's own error is on the last line
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No exporter progress lines, warnings or graph dumps on the console; failures are reported by the caller."""
    logging.disable(logging.ERROR)  # torch's loggers have handlers of their own; only this reaches them all
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def _dynamic_shapes(dynamic_size: bool) -> dict[str, dict[int, Any]]:
    from torch.export import Dim

    automatic = getattr(Dim, "AUTO", None)
    if dynamic_size and automatic is not None:
        # AUTO lets the exporter find the sizes the model's code allows (a U-Net's multiples of 8); torch 2.5 refuses
        # AUTO beside a named Dim, so the batch is AUTO too
        dims = {0: automatic, 2: automatic, 3: automatic}
    else:
        dims = {0: Dim("batch", min=1, max=1024)}
        if dynamic_size:
            dims.update({2: Dim("height", min=32, max=4096), 3: Dim("width", min=32, max=4096)})
    return {"images": dims}  # by the name of DeployModel.forward's argument (torch 2.5's ONNX exporter needs the name)


def _try_sizes(export: Callable[[bool], Any], dynamic_size: bool, name: str, notes: list[str]) -> tuple[Any, bool]:
    """Export with a dynamic image size where the task allows; if the model's code forbids it, with a fixed one."""
    try:
        return export(dynamic_size), dynamic_size
    except Exception as exc:  # noqa: BLE001 - the exporters raise many kinds; the message names the cause
        if not dynamic_size:
            raise ExportError(f"{name} export failed: {_why(exc)}") from None
        notes.append(f"image size fixed at the sample's: a dynamic size failed ({_why(exc)[:160]})")
    try:
        return export(False), False
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"{name} export failed: {_why(exc)}") from None


def export_onnx(deploy: DeployModel, sample: torch.Tensor, path: Path, atol: float, rtol: float, opset: int | None = None) -> ExportResult:
    _require("onnx", "export")
    _require("onnxscript", "export")
    ort = _require("onnxruntime", "export")
    names = list(deploy.task.output_names)
    notes: list[str] = []

    def export(dynamic: bool) -> None:
        with _quiet():
            torch.onnx.export(deploy, (sample,), str(path), input_names=["images"], output_names=names, dynamo=True,
                              dynamic_shapes=_dynamic_shapes(dynamic), opset_version=opset, external_data=False)

    def export_by_tracing(dynamic: bool) -> None:
        axes = {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}
        with _quiet():
            torch.onnx.export(deploy, (sample,), str(path), input_names=["images"], output_names=names, dynamo=False,
                              dynamic_axes={"images": axes}, opset_version=opset or 17)

    try:
        _, dynamic = _try_sizes(export, deploy.task.dynamic_image_size, "ONNX", notes)
    except ExportError as failure:  # torch 2.5's torch.export-based exporter cannot convert some models yet
        notes = [f"made with the TorchScript-based exporter: the torch.export-based one failed ({failure})"]
        try:
            _, dynamic = _try_sizes(export_by_tracing, deploy.task.dynamic_image_size, "ONNX", notes)
        except ExportError:
            raise failure from None
    options = ort.SessionOptions()
    options.log_severity_level = 4  # fatal only: the runtime's own red error line would precede our explanation of it
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(images: torch.Tensor) -> list[Any]:
        return [torch.from_numpy(out) for out in session.run(None, {"images": images.numpy()})]

    inputs = _verification_inputs(sample, dynamic)
    worst, tolerance, checks = _verify(run, deploy, inputs, "the ONNX model in onnxruntime", atol, rtol)
    return ExportResult("onnx", [path], worst, tolerance, checks, notes)


def export_torchscript(deploy: DeployModel, sample: torch.Tensor, path: Path, atol: float, rtol: float) -> ExportResult:
    try:
        with _quiet():
            traced = torch.jit.trace(deploy, (sample,), check_trace=False)
            traced.save(str(path))
            loaded = torch.jit.load(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"TorchScript export (torch.jit.trace) failed: {_why(exc)}") from None
    notes = ["traced: code paths that depend on the input's values or sizes are fixed to the sample's"]
    inputs = _verification_inputs(sample, deploy.task.dynamic_image_size)
    worst, tolerance, checks = _verify(loaded, deploy, inputs, "the TorchScript model", atol, rtol)
    return ExportResult("torchscript", [path], worst, tolerance, checks, notes)


def export_pt2(deploy: DeployModel, sample: torch.Tensor, path: Path, atol: float, rtol: float) -> ExportResult:
    notes: list[str] = []

    def export(dynamic: bool) -> Any:
        with _quiet():
            return torch.export.export(deploy, (sample,), dynamic_shapes=_dynamic_shapes(dynamic))

    program, dynamic = _try_sizes(export, deploy.task.dynamic_image_size, "torch.export", notes)
    torch.export.save(program, str(path))
    loaded = torch.export.load(str(path)).module()
    inputs = _verification_inputs(sample, dynamic)
    worst, tolerance, checks = _verify(loaded, deploy, inputs, "the torch.export program", atol, rtol)
    return ExportResult("pt2", [path], worst, tolerance, checks, notes)


def export_safetensors(predictor: Predictor, deploy: DeployModel, sample: torch.Tensor, path: Path, atol: float, rtol: float) -> ExportResult:
    """The weights, and ``<name>.json`` with what rebuilding the model needs (config, task, classes, normalisation)."""
    safetensors_torch = _require("safetensors.torch", "export")
    from trainyard import __version__
    from trainyard.registry import MODELS

    model_cfg = dict(predictor.cfg.get("model")) if predictor.cfg is not None else None
    if model_cfg is None:
        raise ExportError("a safetensors export needs the model's config: build the predictor with Predictor.from_run")
    safetensors_torch.save_model(deploy.model, str(path), metadata={"format": "pt", "trainyard_version": __version__})
    description = {
        "trainyard_version": __version__,
        "task": getattr(type(deploy.model), "task", None),
        "model": model_cfg,  # json writes tuples as lists
        "classes": list(predictor.metainfo.get("classes") or []),
        "palette": [list(c) for c in predictor.metainfo.get("palette") or []],
        "input": {"layout": "RGB, [B,3,H,W], 0-255", "mean": deploy.mean.flatten().tolist(), "std": deploy.std.flatten().tolist()},
        "config": predictor.cfg.pretty_text if hasattr(predictor.cfg, "pretty_text") else None,
    }
    sidecar = path.with_suffix(".json")
    sidecar.write_text(json.dumps(description, indent=2) + "\n")
    rebuilt_cfg = json.loads(sidecar.read_text())["model"]
    rebuilt = MODELS.build(rebuilt_cfg)
    missing, unexpected = safetensors_torch.load_model(rebuilt, str(path), strict=True)
    rebuilt = DeployModel(rebuilt.eval(), deploy.task)
    inputs = _verification_inputs(sample, deploy.task.dynamic_image_size)
    worst, tolerance, checks = _verify(rebuilt, deploy, inputs, "the model rebuilt from the safetensors file", atol, rtol)
    return ExportResult("safetensors", [path, sidecar], worst, tolerance, checks)


def export_model(predictor: Predictor, format: str, path: str | Path, sample: torch.Tensor,
                 atol: float = 1e-4, rtol: float = 1e-5) -> ExportResult:
    """Export ``predictor``'s model to ``path`` in ``format`` and verify the file by running it.

    ``sample`` is one image or a batch, uint8 or float on the 0-255 scale, at the
    size the model sees after the test pipeline; exports are traced with a batch of
    two (the sample and its mirror image), so the batch size stays dynamic. Outputs
    must match the PyTorch model's within ``atol + rtol * max|output|``.
    """
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = predictor.model.to("cpu").eval()
    deploy = DeployModel(model, predictor.task).eval()
    image = sample.float().cpu()
    image = image[None] if image.dim() == 3 else image[:1]
    batch = torch.cat([image, image.flip(-1)])
    with torch.inference_mode():
        try:
            deploy(batch)
        except Exception as exc:  # noqa: BLE001
            raise ExportError(f"{type(model).__name__} cannot run as an exported model of its task: {_why(exc)}") from None
    try:
        if format == "onnx":
            result = export_onnx(deploy, batch, path, atol, rtol)
        elif format == "torchscript":
            result = export_torchscript(deploy, batch, path, atol, rtol)
        elif format == "pt2":
            result = export_pt2(deploy, batch, path, atol, rtol)
        else:
            result = export_safetensors(predictor, deploy, batch, path, atol, rtol)
    except ExportError as exc:
        hint = "" if format == "safetensors" else " (a safetensors export works for every model)"
        raise ExportError(f"{type(model).__name__} cannot be exported as {format}: {exc}{hint}") from None
    logger.info(f"exported {format} to {path}: max abs difference to PyTorch {result.max_abs_diff:.3g}")
    return result


def export_sample(predictor: Predictor, input_size: Sequence[int] | None = None) -> torch.Tensor:
    """A real image to trace and check with: the test set's first, after the test pipeline; or noise of ``input_size``."""
    if input_size:
        if min(input_size) < predictor.min_input_size:
            raise ExportError(f"--input-size {input_size[0]} {input_size[1]} is smaller than {type(predictor.model).__name__} "
                              f"runs on: give sides of at least {predictor.min_input_size}")
        return torch.randint(0, 256, (3, *input_size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    from trainyard.registry import DATASETS

    for key in ("test_dataloader", "val_dataloader"):
        dataset_cfg = (predictor.cfg.get(key) or {}).get("dataset")
        if dataset_cfg is None:
            continue
        try:
            return DATASETS.build(dataset_cfg)[0]["inputs"]
        except Exception as exc:  # noqa: BLE001 - the dataset may not be on this machine
            raise ExportError(f"cannot read a sample image from {key}.dataset ({type(exc).__name__}: {exc}); "
                              "give the input size instead: --input-size HEIGHT WIDTH") from None
    raise ExportError("the config has no test or val dataset to take a sample image from; give --input-size HEIGHT WIDTH")
