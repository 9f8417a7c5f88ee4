"""The data as the model sees it: samples after the pipeline and the data preprocessor, drawn with their targets.

Inputs are turned back into pictures with the data preprocessor's own ``mean`` and
``std``, so a wrong normalisation, a flipped box or a shifted mask shows. The
targets are drawn by the model's task (:meth:`trainyard.inference.Task.draw_target`):
classes, boxes, label maps; mixed targets (MixUp) with their weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainyard.errors import ConfigError

__all__ = ["BrowseResult", "browse_dataset", "to_pixels"]


@dataclass
class BrowseResult:
    """What :func:`browse_dataset` wrote, and the statistics of the normalised inputs."""

    pictures: list[Path] = field(default_factory=list)
    grid: Path | None = None
    channel_means: list[float] = field(default_factory=list)
    channel_stds: list[float] = field(default_factory=list)

    def summary(self) -> str:
        where = f"{len(self.pictures)} pictures in {self.pictures[0].parent}" if self.pictures else "no pictures"
        lines = [f"wrote {where}" + (f" (all in one: {self.grid})" if self.grid else "")]
        if self.channel_means:
            means = ", ".join(f"{v:.2f}" for v in self.channel_means)
            stds = ", ".join(f"{v:.2f}" for v in self.channel_stds)
            lines.append(f"inputs the model receives (after the data preprocessor): channel means {means}; "
                         f"standard deviations {stds}")
        return "\n".join(lines)


def to_pixels(image: torch.Tensor, preprocessor: Any) -> torch.Tensor:
    """A model input ``[3,H,W]`` back as uint8 pixels: ``image * std + mean`` with the preprocessor's values.

    Without a preprocessor a uint8 image is returned as it is, and a float one is read
    as 0-1 when its values stay within it, else as 0-255.
    """
    image = image.detach().float().cpu()
    mean, std = getattr(preprocessor, "mean", None), getattr(preprocessor, "std", None)
    if isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor):
        image = image * std.cpu().float().view(-1, 1, 1) + mean.cpu().float().view(-1, 1, 1)
    elif image.numel() and image.max() <= 1.0 and image.min() >= 0.0:
        image = image * 255
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    return image.round().clamp(0, 255).to(torch.uint8)


def browse_dataset(runner: Any, split: str, count: int, out: Path, grid_columns: int = 4) -> BrowseResult:
    """Draw the first ``count`` samples of the ``split`` dataloader's dataset into ``out``.

    Samples are read as in the first epoch (the same random augmentation), batched
    with the dataloader's batch size and collate function, and passed through the
    model's data preprocessor in training mode for ``split='train'`` (batch
    augmentations included), else in eval mode. Writes ``<split>_<index>.png`` per
    sample and ``<split>_grid.png`` with all of them.
    """
    from trainyard.drawing import grid
    from trainyard.inference import task_for
    from trainyard.model_summary import preserved_rng

    loader = runner.dataloader(split)
    dataset = loader.dataset
    total = min(count, len(dataset))
    if total == 0:
        raise ConfigError(f"{split}_dataloader.dataset is empty: nothing to browse")
    model = runner.unwrapped_model
    preprocessor = getattr(model, "data_preprocessor", None)
    task = task_for(model, getattr(dataset, "metainfo", None) or {})
    batch_size = loader.batch_size or 1
    result, thumbnails, statistics = BrowseResult(), [], []
    was_training = bool(getattr(preprocessor, "training", False))
    if preprocessor is not None:
        preprocessor.train(split == "train")
    try:
        with preserved_rng(runner.device):
            torch.manual_seed(runner.seed)  # batch augmentations draw the same on every browse, and differently per batch
            for start in range(0, total, batch_size):
                indices = list(range(start, min(total, start + batch_size)))
                batch = runner.preprocess(loader.collate_fn([dataset[(0, index)] for index in indices]))
                metas = batch.get("meta") or [{}] * len(indices)
                for position, index in enumerate(indices):
                    image = batch["inputs"][position]
                    statistics.append(image.detach().float().cpu().flatten(1))
                    target = batch["targets"][position] if batch.get("targets") is not None else None
                    picture = _sample_picture(task, to_pixels(image, preprocessor), target, f"{split} #{index}", metas[position])
                    path = out / f"{split}_{index:04d}.png"
                    _save_png(picture, path)
                    result.pictures.append(path)
                    thumbnails.append(_shrink(picture, 384))
    finally:
        if preprocessor is not None:
            preprocessor.train(was_training)
    rows = [thumbnails[i:i + grid_columns] for i in range(0, len(thumbnails), grid_columns)]
    result.grid = out / f"{split}_grid.png"
    _save_png(grid(rows), result.grid)
    values = torch.cat(statistics, dim=1)
    result.channel_means = values.mean(dim=1).tolist()
    result.channel_stds = values.std(dim=1).tolist()
    return result


def _sample_picture(task: Any, pixels: torch.Tensor, target: Any, name: str, meta: Any) -> torch.Tensor:
    """The task's picture of the sample's target (or the image alone), titled with its name, file and size."""
    from trainyard.drawing import titled

    picture = task.draw_target(pixels, target) if target is not None else None
    file = meta.get("file") if isinstance(meta, dict) else None
    title = f"{name}{f': {Path(str(file)).name}' if file else ''}  ({pixels.shape[-2]}x{pixels.shape[-1]})"
    return titled(picture if picture is not None else pixels, title)


def _shrink(picture: torch.Tensor, longest: int) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as F

    height, width = picture.shape[-2:]
    factor = longest / max(height, width)
    if factor >= 1:
        return picture
    return F.resize(picture, [max(1, round(height * factor)), max(1, round(width * factor))], antialias=True)


def _save_png(picture: torch.Tensor, path: Path) -> None:
    from PIL import Image

    Image.fromarray(picture.permute(1, 2, 0).numpy()).save(path)
