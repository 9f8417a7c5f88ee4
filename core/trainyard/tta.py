"""Test-time augmentation: each batch predicted on several views (flips, scales), the results merged.

MMEngine's vocabulary: the config's ``tta_model=dict(type=...)`` names a wrapper, and
``--tta`` (``trainyard test``, ``val``, ``predict``; ``Predictor.from_run(tta=True)``)
makes ``model`` its ``module``, as MMEngine's ``tools/test.py --tta`` does. Where
OpenMMLab builds the views in the data pipeline (``tta_pipeline`` with
``TestTimeAug``), trainyard builds them on the device, from the batch the model's
data preprocessor made: each image is read and decoded once, and the wrapper knows
every view it must undo. So a TTA model takes its views as arguments:

- ``scales``: factors of the image size (``[0.75, 1.0, 1.25]``; default ``[1.0]``);
- ``flip``: also a horizontally flipped copy of each scale (default True).

Each image costs ``len(scales) x (2 if flip else 1)`` forward passes. The task
plugins bring the wrappers (``ClsTTAModel``, ``SegTTAModel``, ``DetTTAModel``), which
say how a view's prediction is mapped back and how the views merge. A wrapper holds
no weights of its own: its ``state_dict`` is its module's, so a checkpoint of the
plain model loads into it unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from trainyard.errors import ConfigError
from trainyard.registry import MODELS, building

__all__ = ["View", "BaseTTAModel", "tta_views", "mean_probabilities_as_logits", "tta_model_config", "use_tta", "wrap_for_tta"]


@dataclass(frozen=True)
class View:
    """One augmented copy of a batch: images resized by ``scale``, then mirrored left-right when ``flip``."""

    scale: float
    flip: bool


def tta_views(scales: Sequence[float], flip: bool) -> list[View]:
    """Every scale, unflipped then flipped; checked, since each one costs a forward pass per image."""
    if isinstance(scales, (int, float)) and not isinstance(scales, bool):
        scales = [scales]
    if (isinstance(scales, str) or not isinstance(scales, Sequence) or not scales
            or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in scales)):
        raise ConfigError(f"tta_model.scales must be a list of positive numbers (factors of the image size, e.g. [0.75, 1.0, 1.25]), got {scales!r}")
    if not isinstance(flip, bool):
        raise ConfigError(f"tta_model.flip must be True or False, got {flip!r}")
    return [View(float(scale), flipped) for scale in scales for flipped in ((False, True) if flip else (False,))]


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[...,C,H,W]`` at ``size`` (bilinear, as mmcv's ``Resize``); unchanged at its own size."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    batched = image if image.dim() == 4 else image[None]
    resized = F.interpolate(batched.float(), size=size, mode="bilinear", align_corners=False)
    return resized if image.dim() == 4 else resized[0]


class BaseTTAModel(nn.Module):
    """Runs ``module`` on each view of a batch and merges the predictions.

    Subclasses (one per task) implement :meth:`predict_view` (a view's prediction,
    mapped back to the unaugmented images) and :meth:`merge`. ``forward(batch, mode)``
    follows the model contract for ``'predict'`` and ``'tensor'``; there is no
    ``'loss'``: a TTA model evaluates, it does not train.

    Args:
        module: the model (a config, or a built model).
        scales: factors of the image size, one view each (and one flipped each with ``flip``).
        flip: add a horizontally flipped view of each scale.
    """

    task: str | None = None
    """The :class:`trainyard.inference.Task` name, as a model's (``'segmentation'``, ...)."""

    def __init__(self, module: Mapping[str, Any] | nn.Module, scales: Sequence[float] = (1.0,), flip: bool = True) -> None:
        super().__init__()
        if isinstance(module, Mapping):
            with building("model"):
                module = MODELS.build(module)
        if not isinstance(module, nn.Module):
            raise ConfigError(f"{type(self).__name__}.module must be a model config or an nn.Module, got {type(module).__name__}")
        module_task = getattr(type(module), "task", None)
        if self.task is not None and module_task is not None and module_task != self.task:
            right = getattr(type(module), "default_tta_model", None)
            raise ConfigError(f"tta_model.type {type(self).__name__} is for {self.task} models, but the model "
                              f"({type(module).__name__}) is a {module_task} model: use "
                              + (f"tta_model=dict(type='{right}')" if right else f"the test-time augmentation model of {module_task}")
                              + " (or give no tta_model: --tta then uses the model's own)")
        self.module = module
        self.views = tta_views(scales, flip)
        from trainyard.inference import min_input_size

        self.min_side = min_input_size(module)

    @property
    def data_preprocessor(self) -> Any:
        """The module's: views are made from the batch it normalised."""
        return self.module.data_preprocessor

    @property
    def num_classes(self) -> Any:
        return self.module.num_classes

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The module's weights, under the module's own names: a checkpoint of the plain model fits."""
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        return self.module.load_state_dict(state_dict, strict=strict, assign=assign)

    def forward(self, batch: dict[str, Any], mode: str = "predict") -> Any:
        if mode not in ("predict", "tensor"):
            raise ConfigError(f"{type(self).__name__} predicts (mode 'predict' or 'tensor'), got mode={mode!r}: "
                              "test-time augmentation is for val, test and predict (--tta); train the model itself")
        return self.merge([self.predict_view(self.view_batch(batch, view), view, batch, mode) for view in self.views], batch, mode)

    def view_size(self, height: int, width: int, scale: float) -> tuple[int, int]:
        """An image side times ``scale``, rounded, and not below the smallest side the model runs on."""
        return max(round(height * scale), self.min_side), max(round(width * scale), self.min_side)

    def view_image(self, image: torch.Tensor, view: View) -> torch.Tensor:
        """One image or a batch ``[...,C,H,W]`` as the view shows it."""
        image = _resize(image, self.view_size(*image.shape[-2:], view.scale)) if view.scale != 1.0 else image
        return image.flip(-1) if view.flip else image

    def view_batch(self, batch: dict[str, Any], view: View) -> dict[str, Any]:
        """A shallow copy of ``batch`` with its inputs as ``view`` shows them.

        Each image's ``meta['ori_size']`` is kept (and set to the unaugmented size where
        absent), so models that map predictions to the original size do so for each view.
        """
        inputs = batch["inputs"]
        viewed = self.view_image(inputs, view) if isinstance(inputs, torch.Tensor) else [self.view_image(i, view) for i in inputs]
        sizes = [tuple(image.shape[-2:]) for image in inputs]
        metas = batch.get("meta") or [{} for _ in sizes]
        metas = [{**meta, "ori_size": tuple(meta.get("ori_size", size))} for meta, size in zip(metas, sizes)]
        return {**batch, "inputs": viewed, "meta": metas}

    def predict_view(self, view_batch: dict[str, Any], view: View, batch: dict[str, Any], mode: str) -> Any:
        """The module's prediction of one view, mapped back onto the unaugmented images of ``batch``."""
        raise NotImplementedError

    expected_output = ""
    """What the wrapper reads from its module (``'[B,K] class logits'``), named when the module gives something else."""

    def output_fits(self, output: Any) -> bool:
        """Whether ``output`` of the module has the form this wrapper reads (checked on every view: a model of another task is refused)."""
        return True

    def module_output(self, view_batch: dict[str, Any], mode: str) -> Any:
        """``module(view_batch, mode)``, refused in one line when it is not of this wrapper's task (a model naming no ``task``)."""
        output = self.module(view_batch, mode=mode)
        if not self.output_fits(output):
            shape = f"a tensor of shape {list(output.shape)}" if isinstance(output, torch.Tensor) else f"a {type(output).__name__}"
            raise ConfigError(f"tta_model.type {type(self).__name__} reads {self.expected_output} from the model's {mode!r} mode, but "
                              f"{type(self.module).__name__} returned {shape}: use the wrapper of the model's task (ClsTTAModel: "
                              "[B,K] class logits, SegTTAModel: [B,K,H,W] logits, DetTTAModel: per-image boxes)")
        return output

    def merge(self, predictions: list[Any], batch: dict[str, Any], mode: str) -> Any:
        """One prediction per image of ``batch`` from every view's (in the model contract's form for ``mode``)."""
        raise NotImplementedError


def mean_probabilities_as_logits(probabilities: list[torch.Tensor]) -> torch.Tensor:
    """The log of the views' average probabilities: logits whose softmax is that average (and argmax its best class)."""
    mean = torch.stack(probabilities).mean(dim=0)
    return mean.clamp_min(torch.finfo(mean.dtype).tiny).log()


def _model_type(model_cfg: Mapping[str, Any]) -> Any:
    model_type = model_cfg.get("type")
    if isinstance(model_type, str):
        return MODELS.get(model_type)
    return model_type


def tta_model_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config's ``tta_model``, else the model's ``default_tta_model`` (a flip, at scale 1), without ``module``."""
    tta = cfg.get("tta_model")
    model_cfg = cfg.get("model")
    if not isinstance(model_cfg, Mapping):
        raise ConfigError("--tta needs the config's model to be a dict with a 'type'")
    if tta is None:
        default = getattr(_model_type(model_cfg), "default_tta_model", None)
        if default is None:
            raise ConfigError(f"--tta: the config has no tta_model, and {model_cfg.get('type')} names no default one; add e.g. "
                              "tta_model=dict(type='SegTTAModel', scales=[0.75, 1.0, 1.25], flip=True) (ClsTTAModel, DetTTAModel)")
        return {"type": default}
    if not isinstance(tta, Mapping) or "type" not in tta:
        raise ConfigError(f"tta_model must be a dict with a 'type' (e.g. dict(type='SegTTAModel', flip=True)), got {tta!r}")
    tta = dict(tta)
    tta.pop("module", None)  # MMEngine's tools/test.py sets it to the model, as --tta does here
    return tta


def use_tta(cfg: Any) -> None:
    """``--tta`` on a config: ``model`` becomes ``tta_model`` around it (MMEngine's ``cfg.model = cfg.tta_model``)."""
    cfg.model = {**tta_model_config(cfg), "module": dict(cfg.model)}


def wrap_for_tta(cfg: Mapping[str, Any], model: nn.Module) -> nn.Module:
    """A built (and loaded) model inside the config's TTA wrapper (``Predictor.from_run(tta=True)``)."""
    with building("tta_model"):
        wrapped = MODELS.build({**tta_model_config(cfg), "module": model})
    if not isinstance(wrapped, BaseTTAModel):
        raise ConfigError(f"tta_model type {type(wrapped).__name__} is not a test-time augmentation model (trainyard.tta.BaseTTAModel)")
    return wrapped
