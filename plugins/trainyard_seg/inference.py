"""Segmentation's part of inference: class-id masks at the original size, palette PNGs, overlays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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

    def export_outputs(self, model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """The network's logits on the whole image, also for a ``test_cfg`` of ``mode='slide'``.

        Sliding windows are a loop around the network that the deploying application
        runs; traced into an export they would fix it to the sample's size and windows.
        """
        logits = getattr(model, "logits", None)
        return logits(inputs)["out"] if logits is not None else model({"inputs": inputs}, mode="tensor")

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
        path = _write_mask(result["mask"], self.palette, folder / "masks" / f"{stem}.png")
        return {"mask_file": str(path.relative_to(folder))}

    def results(self, outputs: Any, batch: Mapping[str, Any], **options: Any) -> list[dict[str, Any]]:
        return [{"mask": output.detach().cpu()} for output in outputs]

    def result_record(self, result: Mapping[str, Any], meta: Mapping[str, Any], folder: Path, stem: str) -> dict[str, Any]:
        """``masks/<stem>.png`` in the ids of the dataset's label files: Cityscapes' labelIds, not its train ids.

        A dataset that reads its files through a ``label_map`` declares each class's
        file id in ``metainfo['label_ids']``; the masks then hold those ids (in the
        same colours), as the dataset's own evaluation scripts expect. Otherwise they
        hold the class ids, as :meth:`save` writes them.
        """
        label_ids = self.metainfo.get("label_ids")
        mask, palette = result["mask"], self.palette
        if label_ids:
            table = torch.full((256,), 255, dtype=torch.uint8)
            table[: len(label_ids)] = torch.tensor(list(label_ids), dtype=torch.uint8)
            mask = table[mask.long().clamp(0, 255)]
            by_id = [(0, 0, 0)] * 256
            for label, label_id in enumerate(label_ids):
                by_id[label_id] = palette[label] if label < len(palette) else (255, 255, 255)
            palette = by_id
        path = _write_mask(mask, palette, folder / "masks" / f"{stem}.png")
        return {"index": meta.get("index"), "file": meta.get("file"), "mask_file": str(path.relative_to(folder))}

    def draw(self, image: torch.Tensor, result: Mapping[str, Any], alpha: float = 0.5, **options: Any) -> torch.Tensor:
        return seg_picture([(image, None, result["mask"])], self.classes, self.palette, alpha)

    def draw_target(self, image: torch.Tensor, target: Any, alpha: float = 0.5, **options: Any) -> torch.Tensor:
        """The image and its label map as a colour overlay (ignored pixels left uncoloured), with a legend."""
        from trainyard.drawing import below, enlarge, grid, legend, titled
        from trainyard_seg import IGNORE_INDEX
        from trainyard_seg.visualization import overlay

        colours = torch.tensor(self.palette, dtype=torch.uint8)
        image, labels = enlarge(image, 192), enlarge(target.cpu(), 192, nearest=True)
        picture = grid([[titled(image, "input"), titled(overlay(image, labels, colours, alpha), "labels")]])
        present = [int(v) for v in target.unique() if int(v) != IGNORE_INDEX]
        entries = [(self.class_name(i), colours[i].tolist() if i < len(colours) else [255, 255, 255]) for i in present]
        return below(picture, legend(entries, picture.shape[-1])) if entries else picture


def _write_mask(mask: torch.Tensor, palette: Sequence[Sequence[int]], path: Path) -> Path:
    """A palette PNG whose pixel values are ``mask``'s (uint8) values, coloured by ``palette``."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(mask.to(torch.uint8).numpy(), mode="P")
    flat = [int(channel) for colour in list(palette)[:256] for channel in colour]
    picture.putpalette(flat + [255] * (768 - len(flat)))
    picture.save(path)
    return path


def read_mask(path: str | Path) -> torch.Tensor:
    """A mask written by :meth:`SegTask.save` back as int64 class ids ``[H,W]``."""
    from PIL import Image

    with Image.open(path) as picture:
        return torch.from_numpy(np.asarray(picture).astype(np.int64))
