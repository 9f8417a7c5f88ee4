"""Segmentation's part of inference: class-id masks at the original size, palette PNGs, overlays."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from trainyard.inference import Task, remove_padding
from trainyard_seg.datasets.base import default_palette
from trainyard_seg.models.segmentor import label_map, resize_logits
from trainyard_seg.visualization import seg_picture


class SegTask(Task):
    """Results: ``mask`` (int64 ``[H,W]`` class ids at the original size) and, with
    ``probabilities=True``, ``probabilities`` (float ``[K,H,W]``, softmax per pixel)."""

    output_names = ("logits",)

    @property
    def palette(self) -> list[tuple[int, int, int]]:
        palette = self.metainfo.get("palette")
        return [tuple(c) for c in palette] if palette else default_palette(max(len(self.classes), 1))

    def predict(self, model: torch.nn.Module, batch: dict[str, Any], probabilities: bool = False, **options: Any) -> list[dict[str, Any]]:
        logits = remove_padding(model(batch, mode="tensor").float(), batch)
        sizes = [tuple(meta["ori_size"]) for meta in batch["meta"]]
        # images of one size (the usual batch) are resized and copied to the CPU together: one transfer, not one each
        groups = [(list(range(len(sizes))), sizes[0])] if len(set(sizes)) == 1 else [([i], size) for i, size in enumerate(sizes)]
        results: list[dict[str, Any]] = [{} for _ in sizes]
        for indices, size in groups:
            scores = resize_logits(logits if len(indices) == len(sizes) else logits[indices], size)
            masks = label_map(scores).cpu()
            chances = scores.softmax(dim=1).cpu() if probabilities else None
            for position, index in enumerate(indices):
                results[index]["mask"] = masks[position]
                if chances is not None:
                    results[index]["probabilities"] = chances[position]
        return results

    def record(self, result: Mapping[str, Any]) -> dict[str, Any]:
        """The pixels of each class present, by name."""
        values, counts = result["mask"].unique(return_counts=True)
        return {"pixels": {self.class_name(int(v)): int(c) for v, c in zip(values, counts)}}

    def save(self, result: Mapping[str, Any], folder: Path, stem: str) -> dict[str, str]:
        """``masks/<stem>.png``: a palette PNG whose pixel values are the class ids."""
        from PIL import Image

        (folder / "masks").mkdir(parents=True, exist_ok=True)
        path = folder / "masks" / f"{stem}.png"
        picture = Image.fromarray(result["mask"].to(torch.uint8).numpy(), mode="P")
        flat = [channel for colour in self.palette[:256] for channel in colour]
        picture.putpalette(flat + [255] * (768 - len(flat)))
        picture.save(path)
        return {"mask_file": str(path.relative_to(folder))}

    def draw(self, image: torch.Tensor, result: Mapping[str, Any], alpha: float = 0.5, **options: Any) -> torch.Tensor:
        return seg_picture([(image, None, result["mask"])], self.classes, self.palette, alpha)


def read_mask(path: str | Path) -> torch.Tensor:
    """A mask written by :meth:`SegTask.save` back as int64 class ids ``[H,W]``."""
    from PIL import Image

    with Image.open(path) as picture:
        return torch.from_numpy(np.asarray(picture).astype(np.int64))
