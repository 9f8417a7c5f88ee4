"""Predict with a trained model: the model from a run's saved config, safe weights, the test pipeline.

:class:`Predictor` is task-agnostic. What a task adds (turning model outputs into
per-image results, a JSON record, a picture, the tensors an export returns) is a
:class:`Task` registered by its plugin in ``TASKS`` under the name the model gives
in its ``task`` class attribute::

    predictor = Predictor.from_run("work_dirs/unet")        # best, else last checkpoint
    results = predictor(["photo.jpg", "scans/"])            # one dict per image
    results[0]["mask"].shape == original (H, W)

Images are read, run through the config's test pipeline and batched; results are in
the original images' coordinates. Everything runs under ``torch.inference_mode()``,
with autocast when ``amp=True``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainyard import checkpoint
from trainyard.amp import autocast_context
from trainyard.errors import CheckpointError, ConfigError, DatasetError, ModelContractError, RegistryError
from trainyard.images import IMAGE_EXTENSIONS, from_16_bit, pil_to_tensor, read_image
from trainyard.registry import MODELS, TASKS, building
from trainyard.pretrained import weights_from_checkpoint

__all__ = ["Task", "task_for", "Predictor", "Prediction", "find_checkpoint", "autocast_context", "resolve_device", "remove_padding"]

logger = logging.getLogger("trainyard")


class Task:
    """The per-task part of inference. Plugins subclass it and register it in ``TASKS``.

    An instance knows the dataset's ``metainfo`` (``classes``, ``palette``) the model
    was trained with. The default implementation serves any model that follows the
    model contract: results hold the raw per-image ``prediction``, and there is no
    picture.
    """

    def __init__(self, metainfo: Mapping[str, Any] | None = None) -> None:
        self.metainfo = dict(metainfo or {})

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.metainfo.get("classes") or ()]

    def class_name(self, label: int) -> str:
        classes = self.classes
        return classes[label] if 0 <= label < len(classes) else str(label)

    def predict(self, model: nn.Module, batch: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
        """Per-image results of one preprocessed batch, on the CPU, in original image coordinates."""
        predictions = model(batch, mode="predict")
        return [{"prediction": p.cpu() if isinstance(p, torch.Tensor) else p} for p in predictions]

    def record(self, result: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON-serialisable summary of one result (a line of ``predictions.jsonl``)."""
        return {key: _plain(value) for key, value in result.items()}

    def save(self, result: Mapping[str, Any], folder: Path, stem: str) -> dict[str, str]:
        """Write per-image files besides the picture (segmentation masks); returns ``{record key: path}``."""
        return {}

    def draw(self, image: torch.Tensor, result: Mapping[str, Any], **options: Any) -> torch.Tensor | None:
        """A picture of one result on its original uint8 ``[3,H,W]`` image, or None."""
        return None

    def draw_target(self, image: torch.Tensor, target: Any, **options: Any) -> torch.Tensor | None:
        """A picture of one sample's ground truth (``batch['targets'][i]``) on its uint8 ``[3,H,W]`` image, or None.

        ``trainyard browse`` draws the data this way, after the pipeline and the data preprocessor.
        """
        return None

    def results(self, outputs: Any, batch: Mapping[str, Any], **options: Any) -> list[dict[str, Any]]:
        """Per-image results, as :meth:`predict` gives them, from the ``mode='predict'`` outputs an evaluation loop saw.

        ``trainyard test --dump/--show-dir`` use it; the default keeps the raw prediction.
        """
        return [{"prediction": p.detach().cpu() if isinstance(p, torch.Tensor) else p} for p in outputs]

    def result_record(self, result: Mapping[str, Any], meta: Mapping[str, Any], folder: Path, stem: str) -> dict[str, Any]:
        """One image's entry of the result file, after writing its own files (masks) under ``folder``.

        Runs on the rank that evaluated the image; the records of all ranks are then
        gathered, in dataset order, for :meth:`write_result_file`.
        """
        return {"index": meta.get("index"), "file": meta.get("file"), **self.record(result), **self.save(result, folder, stem)}

    def write_result_file(self, records: Sequence[Mapping[str, Any]], folder: Path) -> Path:
        """The field's result file of a whole test set (default: one JSON line per image, as ``trainyard predict``)."""
        import json

        path = folder / "predictions.jsonl"
        path.write_text("".join(json.dumps(dict(record)) + "\n" for record in records), encoding="utf-8")
        return path

    def export_outputs(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """What an exported model returns for a normalised float batch ``[B,3,H,W]`` (default: ``mode='tensor'``)."""
        return model({"inputs": inputs}, mode="tensor")

    output_names: tuple[str, ...] = ("output",)
    """Names of :meth:`export_outputs`' tensors in ONNX files."""

    dynamic_image_size = True
    """Whether exports may take images of any size (False: the sample's size only)."""


def task_for(model: nn.Module, metainfo: Mapping[str, Any] | None = None) -> Task:
    """The :class:`Task` the model's ``task`` attribute names, knowing the dataset's ``metainfo``; the base Task without one."""
    task_name = getattr(type(model), "task", None)
    if task_name is None:
        return Task(metainfo)
    with building("model.task"):
        return TASKS.build({"type": task_name}, metainfo=dict(metainfo or {}))


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def resolve_device(device: str | torch.device) -> torch.device:
    """``'auto'``: CUDA when there is one, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {str(device)!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but this machine has no usable CUDA device; use 'cpu' or 'auto'")
    return device


def find_checkpoint(source: str | Path) -> Path:
    """The checkpoint a run or checkpoint path names.

    A file is itself. A work dir gives its best checkpoint (``best_*.pth``, the
    latest in training), else the one ``last_checkpoint`` names, else its newest intact one. A
    run directory (``work_dir/<timestamp>``) is looked up in its work dir.
    """
    path = Path(source)
    if path.is_file() or checkpoint.is_checkpoint_directory(path):
        return path
    if not path.is_dir():
        raise CheckpointError(f"{path} does not exist: give a checkpoint file, or a work dir or run directory holding checkpoints")
    for folder in (path, path.parent) if (path / "config.py").is_file() else (path,):
        best = checkpoint.latest_first([*folder.glob("best_*.pth"), *folder.glob("best_*.dcp")])
        if best:
            return best[0]
        found = checkpoint.last_checkpoint(folder) or checkpoint.newest_intact_checkpoint(folder)
        if found is not None:
            return found
    raise CheckpointError(f"no checkpoint in {path}: a work dir holds *.pth files after training; give one of them")


@dataclass
class Prediction:
    """One input's result, with its source and its original image (for pictures)."""

    source: str
    image: torch.Tensor
    result: dict[str, Any]


class _Inputs(torch.utils.data.Dataset):
    """Images from paths, PIL images, numpy arrays or tensors, read and run through the pipeline."""

    def __init__(self, items: Sequence[tuple[str, Any]], pipeline: Any) -> None:
        self.items = items
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from torchvision import tv_tensors

        source, item = self.items[index]
        image = read_image(item) if isinstance(item, Path) else to_image_tensor(item, source)
        inputs = image
        if self.pipeline is not None:
            inputs = self.pipeline({"inputs": tv_tensors.Image(image)})["inputs"].as_subclass(torch.Tensor)
        meta = {"index": index, "ori_size": tuple(image.shape[-2:]), "file": source}
        return {"inputs": inputs, "meta": meta, "image": image}


def to_image_tensor(item: Any, source: str = "input") -> torch.Tensor:
    """An RGB uint8 ``[3,H,W]`` tensor from a PIL image, a numpy array or a tensor.

    Grey images get three channels and an alpha channel is dropped. Arrays are
    ``[H,W]``, ``[H,W,C]`` (numpy's layout) and tensors ``[H,W]`` or ``[C,H,W]``;
    floats are taken as 0-1, and 16-bit values (uint16, PIL's 16-bit modes) are scaled
    to 8 bits as :func:`trainyard.images.from_16_bit` says.
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None
    if Image is not None and isinstance(item, Image.Image):
        return pil_to_tensor(item)
    if isinstance(item, np.ndarray):
        array = item[..., None] if item.ndim == 2 else item
        if array.ndim != 3:
            raise DatasetError(f"{source}: a numpy image must be [H,W] or [H,W,C], got shape {item.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
    elif isinstance(item, torch.Tensor):
        tensor = item.detach().cpu()
        tensor = tensor[None] if tensor.dim() == 2 else tensor
        if tensor.dim() != 3:
            raise DatasetError(f"{source}: an image tensor must be [H,W] or [C,H,W], got shape {tuple(item.shape)}")
    else:
        raise DatasetError(f"{source}: cannot read a {type(item).__name__} as an image; give a path, a folder, a PIL image, a numpy array or a tensor")
    channels = tensor.shape[0]
    if channels not in (1, 3, 4):
        raise DatasetError(f"{source}: an image has 1, 3 or 4 channels, got {channels} (shape {tuple(tensor.shape)})")
    if tensor.is_floating_point():
        tensor = (tensor.float() * 255).round().clamp(0, 255)
    elif tensor.dtype == torch.uint16:
        tensor = from_16_bit(tensor)
    tensor = tensor.to(torch.uint8)
    if channels == 1:
        tensor = tensor.expand(3, -1, -1)
    return tensor[:3].contiguous()


def min_input_size(model: nn.Module) -> int:
    """The smallest image side the model runs on: the largest ``min_input_size`` its modules declare (1: none)."""
    return max(int(getattr(module, "min_input_size", 1)) for module in model.modules())


def pad_to_minimum(batch: dict[str, Any], minimum: int) -> None:
    """Pad a batch of images with a side below ``minimum`` up to it, at the bottom and right.

    A U-Net of depth 4 cannot pool a 1x1 image. As mmseg pads to the model's size
    divisor, the normalised images are padded with 0 (the mean colour); each image's
    ``meta['unpadded_size']`` records what was there, so dense results can be cropped
    back (:func:`remove_padding`). Box coordinates are unchanged by such padding.
    """
    inputs = batch["inputs"]
    if not isinstance(inputs, torch.Tensor) or min(inputs.shape[-2:]) >= minimum:
        return
    height, width = inputs.shape[-2:]
    batch["inputs"] = torch.nn.functional.pad(inputs, (0, max(minimum - width, 0), 0, max(minimum - height, 0)))
    for meta in batch["meta"]:
        meta["unpadded_size"] = (height, width)


def remove_padding(dense: torch.Tensor, batch: Mapping[str, Any]) -> torch.Tensor:
    """``[B,K,h,w]`` outputs for a batch that :func:`pad_to_minimum` padded, without the padded part (any resolution)."""
    unpadded = batch["meta"][0].get("unpadded_size") if batch.get("meta") else None
    if unpadded is None:
        return dense
    padded = batch["inputs"].shape[-2:]
    rows = max(1, round(dense.shape[-2] * unpadded[0] / padded[0]))
    columns = max(1, round(dense.shape[-1] * unpadded[1] / padded[1]))
    return dense[..., :rows, :columns]


def expand_inputs(inputs: Any) -> list[tuple[str, Any]]:
    """``(source name, item)`` per image: folders become their image files (sorted), a 4-D tensor its images."""
    if isinstance(inputs, (str, Path, np.ndarray)) or not isinstance(inputs, Iterable) or (
        isinstance(inputs, torch.Tensor) and inputs.dim() < 4
    ):
        inputs = [inputs]
    items: list[tuple[str, Any]] = []
    for position, item in enumerate(inputs):
        if isinstance(item, (str, Path)):
            path = Path(item)
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
                if not files:
                    raise DatasetError(f"folder {path} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
                items.extend((str(p), p) for p in files)
            elif path.is_file():
                if path.suffix.lower() not in IMAGE_EXTENSIONS:
                    raise DatasetError(f"{path} is not an image file (expected one of {', '.join(IMAGE_EXTENSIONS)})")
                items.append((str(path), path))
            else:
                raise DatasetError(f"input {path} does not exist")
        elif isinstance(item, torch.Tensor) and item.dim() == 4:
            items.extend((f"input {position}[{index}]", image) for index, image in enumerate(item))
        else:
            items.append((f"input {position}", item))
    if not items:
        raise DatasetError("no inputs to predict on")
    return items


def test_pipeline_config(cfg: Mapping[str, Any]) -> list[Any]:
    """The pipeline of the test dataset (else the validation dataset): what predictions go through."""
    for key in ("test_dataloader", "val_dataloader"):
        dataset = (cfg.get(key) or {}).get("dataset")
        while isinstance(dataset, Mapping) and "dataset" in dataset and "pipeline" not in dataset:
            dataset = dataset["dataset"]  # wrappers (RepeatDataset, ...) hold the real one
        if isinstance(dataset, Mapping):
            return list(dataset.get("pipeline") or [])
    return []


def _batches_of_equal_shape(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive runs of items whose inputs have one shape (a batch tensor needs equal sizes)."""
    group: list[dict[str, Any]] = []
    for item in items:
        if group and item["inputs"].shape != group[0]["inputs"].shape:
            yield group
            group = []
        group.append(item)
    if group:
        yield group


class Predictor:
    """A trained model ready for new images: ``predictor(images) -> list of per-image results``.

    Args:
        model: a model following trainyard's contract (``forward(batch, mode)``).
        pipeline: ``torchvision.transforms.v2`` configs applied to each image (the
            config's test pipeline in :meth:`from_run`).
        metainfo: the training dataset's ``classes`` and ``palette``.
        device: ``'auto'`` (CUDA when there is one), ``'cpu'``, ``'cuda'``, ``'cuda:1'``.
        amp: run under autocast (float16 on CUDA, bfloat16 on the CPU).
        batch_size: images per forward pass.
        num_workers: processes reading and transforming images (0: this one).
    """

    def __init__(self, model: nn.Module, pipeline: Sequence[Any] | None = None, metainfo: Mapping[str, Any] | None = None,
                 device: str | torch.device = "auto", amp: bool = False, batch_size: int = 8, num_workers: int = 0) -> None:
        from trainyard.data import build_pipeline

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"Predictor batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ConfigError(f"Predictor num_workers must be 0 (read in this process) or more, got {num_workers!r}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.pipeline = build_pipeline(list(pipeline or []))
        self.metainfo = dict(metainfo or {})
        self.amp = amp
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.min_input_size = min_input_size(model)
        """Images with a smaller side are padded up to it (:func:`pad_to_minimum`)."""
        task_name = getattr(type(model), "task", None)
        self.task_name: str | None = task_name
        """The model's ``task`` (``'segmentation'``, ...), None for a model that names none."""
        self.task = task_for(model, self.metainfo)
        self.checkpoint_path: Path | None = None
        self.cfg: Any = None

    @classmethod
    def from_run(cls, source: str | Path, config: str | Path | Mapping[str, Any] | None = None, device: str | torch.device = "auto",
                 amp: bool = False, batch_size: int | None = None, num_workers: int = 0, tta: bool = False) -> Predictor:
        """A predictor for a checkpoint file, or the best (else last) checkpoint of a work dir or run directory.

        ``tta=True`` wraps the model in the config's ``tta_model`` (else the model's
        default, a horizontal flip): test-time augmentation, see :mod:`trainyard.tta`.

        The model is rebuilt from ``config`` (a file, or a loaded config) or, by
        default, from the resolved config saved inside the checkpoint, so the config
        file need not exist any more. Weights load with ``weights_only=True``; a run
        that used an EMA hook saved the averaged weights, and those are used.
        """
        path = find_checkpoint(source)
        state = checkpoint.read_full_checkpoint(path)  # a sharded checkpoint is consolidated here, in this process
        meta = state.get("meta") if isinstance(state.get("meta"), Mapping) else {}
        cfg = _config_for(path, meta, config)
        saved_metainfo = meta.get("dataset_meta") or {}
        if not isinstance(saved_metainfo, Mapping) or not isinstance(cfg.get("model") or {}, Mapping):
            raise CheckpointError(f"{path}: its dataset_meta or its config's model is not a dict; it was not written by "
                                  "trainyard, or was altered. Give the config file too, or use another checkpoint")
        metainfo = dict(saved_metainfo) or _dataset_metainfo(cfg)
        model_cfg = dict(cfg.get("model") or {})
        if not model_cfg:
            raise ConfigError(f"the config of {path} has no 'model'")
        if model_cfg.get("num_classes") == "auto":
            if not metainfo.get("classes"):
                raise ConfigError("model.num_classes='auto', and neither the checkpoint nor the test dataset lists classes; set model.num_classes")
            model_cfg["num_classes"] = len(metainfo["classes"])
        model_cfg.pop("checkpoint", None)  # the weights come from the run's checkpoint, not its starting point
        try:
            with building("model"), weights_from_checkpoint():  # the checkpoint's weights replace any pretrained ones
                model = MODELS.build(model_cfg)
        except RegistryError as exc:
            if config is None and cfg.get("custom_imports"):
                raise RegistryError(f"{exc} (the config saved in {path.name} names custom_imports, which a checkpoint's config "
                                    "never imports: give the config file too, trainyard predict CONFIG CHECKPOINT ...)") from None
            raise
        weights = checkpoint.weights_of(state)
        try:
            checkpoint.load_model_state(model, weights, str(path), strict=True)
        except CheckpointError as exc:
            raise CheckpointError(f"{exc}. Was {path.name} trained with this config ({model_cfg.get('type')})?") from None
        if tta:
            from trainyard.tta import wrap_for_tta

            model = wrap_for_tta(cfg, model)
        dataloader = cfg.get("test_dataloader") or cfg.get("val_dataloader") or {}
        predictor = cls(
            model, test_pipeline_config(cfg), metainfo, device=device, amp=amp,
            batch_size=int(dataloader.get("batch_size", 8)) if batch_size is None else batch_size, num_workers=num_workers,
        )
        predictor.checkpoint_path = path
        predictor.cfg = cfg
        logger.info(f"predictor: {model_cfg.get('type')} from {path} (iteration {meta.get('iter', '?')}, "
                    f"{'EMA' if meta.get('weights') == 'ema' else 'trained'} weights) on {predictor.device}")
        return predictor

    def __call__(self, inputs: Any, **options: Any) -> list[dict[str, Any]]:
        """Per-image results for ``inputs``: a path, a folder, a PIL image, an array, a tensor, or a list of them.

        ``options`` go to the task (``topk`` for classification, ``score_thr`` for
        detection, ``probabilities=True`` for segmentation).
        """
        return [prediction.result for prediction in self.predict(inputs, **options)]

    def predict(self, inputs: Any, **options: Any) -> Iterator[Prediction]:
        """Like calling the predictor, one :class:`Prediction` (with the original image) at a time."""
        dataset = _Inputs(expand_inputs(inputs), self.pipeline)
        if self.num_workers:
            chunks: Iterable[list[dict[str, Any]]] = torch.utils.data.DataLoader(
                dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=list)
        else:  # read in this process, without a DataLoader's per-batch machinery
            chunks = ([dataset[i] for i in range(start, min(start + self.batch_size, len(dataset)))]
                      for start in range(0, len(dataset), self.batch_size))
        for chunk in chunks:
            for group in _batches_of_equal_shape(chunk):
                results = self._forward(group, options)
                if len(results) != len(group):
                    raise ModelContractError(f"{type(self.task).__name__} returned {len(results)} results for {len(group)} images")
                for item, result in zip(group, results):
                    yield Prediction(item["meta"]["file"], item["image"], result)

    def _forward(self, group: list[dict[str, Any]], options: Mapping[str, Any]) -> list[dict[str, Any]]:
        from trainyard.data import to_device
        from trainyard.transfer import stack_for_device

        # one shape per group (_batches_of_equal_shape); on CUDA the stack is page-locked, so the copy is asynchronous
        batch = {"inputs": stack_for_device([item["inputs"] for item in group], self.device)}
        preprocessor = getattr(self.model, "data_preprocessor", None)
        with torch.inference_mode(), autocast_context(self.device, self.amp):
            batch = preprocessor(batch) if preprocessor is not None else to_device(batch, self.device)
            batch["meta"] = [item["meta"] for item in group]  # stays on the CPU: plain values, nothing to move
            pad_to_minimum(batch, self.min_input_size)
            return self.task.predict(self.model, batch, **options)

    def draw(self, prediction: Prediction, **options: Any) -> torch.Tensor | None:
        """The task's picture of one prediction (None for a task that draws nothing)."""
        return self.task.draw(prediction.image, prediction.result, **options)


def _config_for(path: Path, meta: Mapping[str, Any], config: str | Path | Mapping[str, Any] | None) -> Any:
    """The config the user gave (code they trust), else the one saved in the checkpoint, read as data only."""
    from trainyard.config import config_from_saved_text, load_config

    if config is not None:
        return load_config(config) if isinstance(config, (str, Path)) else config
    text = meta.get("config")
    if not text or not isinstance(text, str):
        raise CheckpointError(f"{path} holds no config (not written by trainyard); give the config file too")
    cfg = config_from_saved_text(text, str(path))
    imports = (cfg.get("custom_imports") or {}).get("imports") if isinstance(cfg.get("custom_imports"), Mapping) else None
    if imports:
        logger.warning(f"the config saved in {path} names custom_imports {list(imports)}; a checkpoint is data, so they "
                       "are not imported. If its model is not found, give the config file too")
    return cfg


def _dataset_metainfo(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Class names and palette from the test (else val, else train) dataset, for checkpoints that do not hold them."""
    from trainyard.registry import DATASETS

    for key in ("test_dataloader", "val_dataloader", "train_dataloader"):
        dataset_cfg = (cfg.get(key) or {}).get("dataset")
        if not isinstance(dataset_cfg, Mapping):
            continue
        try:
            dataset = DATASETS.build(dataset_cfg)
        except Exception:  # noqa: BLE001 - the dataset's files may not be on this machine; names are optional
            continue
        return dict(getattr(dataset, "metainfo", None) or {})
    return {}
