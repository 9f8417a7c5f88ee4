"""A segmentation dataset generated on the fly: shapes on textured, noisy backgrounds.

No files and no downloads: sample ``i`` of split ``s`` is a pure function of
``(seed, s, i)``, a few milliseconds at 128x128. With ``color_cue`` each class has
its own tint, and a small U-Net learns it in a minute on a CPU; without it only the
shape tells the classes apart, which is much harder.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from trainyard.data import sample_seed
from trainyard_seg.datasets.base import SegDataset

CLASS_TINTS = {1: (200, 60, 60), 2: (60, 190, 70), 3: (70, 90, 210)}
SPLIT_OFFSETS = {"train": 0, "val": 1, "test": 2}


class ShapesDataset(SegDataset):
    """Discs, rectangles and triangles (classes 1-3) on background (class 0).

    Args:
        length: number of samples.
        size: image side in pixels.
        split: ``'train'``, ``'val'`` or ``'test'``: disjoint streams of samples.
        seed: the dataset's seed (independent of the run's seed).
        max_shapes: at most this many shapes per image (at least one).
        color_cue: tint each class with its own colour.
        noise: standard deviation of the pixel noise (0-255 scale).
    """

    CLASSES = ("background", "disc", "rectangle", "triangle")
    PALETTE = ((0, 0, 0), (220, 20, 60), (0, 170, 70), (30, 90, 230))

    def __init__(self, length: int = 1000, size: int = 64, split: str = "train", seed: int = 0, max_shapes: int = 4,
                 color_cue: bool = True, noise: float = 12.0, **options: Any) -> None:
        super().__init__(**options)
        if split not in SPLIT_OFFSETS:
            raise ValueError(f"ShapesDataset split must be one of {sorted(SPLIT_OFFSETS)}, got {split!r}")
        self.length, self.size, self.split, self.seed = length, size, split, seed
        self.max_shapes, self.color_cue, self.noise = max_shapes, color_cue, noise

    def __len__(self) -> int:
        return self.length

    def load(self, index: int):
        if not 0 <= index < self.length:
            raise IndexError(f"ShapesDataset index {index} out of range for length {self.length}")
        image, label = self.generate(index)
        return image, label, {"file": f"shapes/{self.split}/{index:06d}"}

    def generate(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``index`` as (uint8 image ``[3,S,S]``, uint8 label map ``[S,S]``)."""
        generator = torch.Generator().manual_seed(sample_seed(self.seed, SPLIT_OFFSETS[self.split], index))

        def uniform(low: float, high: float) -> float:
            return low + (high - low) * torch.rand((), generator=generator).item()

        size = self.size
        ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
        image = torch.empty(3, size, size).copy_(torch.rand(3, 1, 1, generator=generator) * 80 + 70)
        for _ in range(2):
            angle, frequency, phase = uniform(0, math.pi), uniform(0.05, 0.3), uniform(0, 2 * math.pi)
            wave = torch.sin(frequency * (xs * math.cos(angle) + ys * math.sin(angle)) + phase)
            image += uniform(10, 30) * wave * (torch.rand(3, 1, 1, generator=generator) * 0.5 + 0.5)
        label = torch.zeros(size, size, dtype=torch.uint8)
        count = 1 + int(torch.randint(self.max_shapes, (), generator=generator))
        for _ in range(count):
            cls = 1 + int(torch.randint(3, (), generator=generator))
            cx, cy = uniform(0.15, 0.85) * size, uniform(0.15, 0.85) * size
            extent = uniform(0.1, 0.25) * size
            mask = _shape_mask(cls, xs, ys, cx, cy, extent, uniform(0, 2 * math.pi), uniform(0.6, 1.4))
            if self.color_cue:
                colour = torch.tensor(CLASS_TINTS[cls], dtype=torch.float32) + (torch.rand(3, generator=generator) - 0.5) * 60
            else:
                colour = torch.rand(3, generator=generator) * 255
            image = torch.where(mask, colour.view(3, 1, 1), image)
            label[mask] = cls
        image += torch.randn(image.shape, generator=generator) * self.noise
        return image.clamp_(0, 255).to(torch.uint8), label

    def export(self, root: str | Path, img_suffix: str = ".png") -> Path:
        """Write the split to ``root/img_dir/<split>`` and ``root/ann_dir/<split>`` (the folder layout).

        ``FolderSegDataset(data_root=root, img_dir='img_dir/<split>', ann_dir='ann_dir/<split>',
        img_suffix='.png')`` reads it back.
        """
        from PIL import Image

        root = Path(root)
        image_dir, label_dir = root / "img_dir" / self.split, root / "ann_dir" / self.split
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        for index in range(self.length):
            image, label = self.generate(index)
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(image_dir / f"{index:06d}{img_suffix}")
            Image.fromarray(label.numpy(), mode="L").save(label_dir / f"{index:06d}.png")
        return root


def _shape_mask(cls: int, xs: torch.Tensor, ys: torch.Tensor, cx: float, cy: float, extent: float, angle: float, aspect: float) -> torch.Tensor:
    dx, dy = xs - cx, ys - cy
    if cls == 1:
        return dx * dx + dy * dy <= extent * extent
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    if cls == 2:
        return (u.abs() <= extent * aspect) & (v.abs() <= extent / aspect)
    corners = [(extent * math.cos(angle + k * 2 * math.pi / 3), extent * math.sin(angle + k * 2 * math.pi / 3)) for k in range(3)]
    signs = []
    for (x1, y1), (x2, y2) in zip(corners, corners[1:] + corners[:1]):
        signs.append((x2 - x1) * (dy - y1) - (y2 - y1) * (dx - x1) >= 0)
    return (signs[0] == signs[1]) & (signs[1] == signs[2])
