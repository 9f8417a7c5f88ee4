"""Images of shapes drawn on the fly: a classification dataset that needs no files."""

from __future__ import annotations

import zlib
from typing import Any

import torch

from trainyard import DatasetError
from trainyard_cls.datasets.base import ClsDataset


def _shape_mask(shape: str, dx: torch.Tensor, dy: torch.Tensor, radius: float) -> torch.Tensor:
    distance = (dx**2 + dy**2).sqrt()
    if shape == "disc":
        return distance < radius
    if shape == "square":
        return torch.maximum(dx.abs(), dy.abs()) < radius * 0.85
    if shape == "triangle":
        return (dy.abs() < radius * 0.9) & (dx.abs() < (dy + radius * 0.9) * 0.55)
    if shape == "ring":
        return (distance < radius) & (distance > radius * 0.55)
    if shape == "cross":
        return ((dx.abs() < radius / 3) & (dy.abs() < radius)) | ((dy.abs() < radius / 3) & (dx.abs() < radius))
    return dx.abs() + dy.abs() < radius


class GeneratedClsDataset(ClsDataset):
    """One shape per image, the class being the shape: colour, size, position and noise vary.

    Each sample is drawn from a generator seeded by ``(split, index)``, so a split is
    the same on every run and machine, and train, val and test differ.

    Args:
        length: number of images.
        size: image height and width.
        split: any name; it seeds the images.
        classes: which shapes, from ``disc, square, triangle, ring, cross, diamond``.
        noise: standard deviation of the pixel noise (0-255 scale).
    """

    CLASSES = ("disc", "square", "triangle", "ring", "cross", "diamond")

    def __init__(self, length: int = 1000, size: int = 32, split: str = "train", noise: float = 12.0, **options: Any) -> None:
        super().__init__(**options)
        unknown = sorted(set(self.classes) - set(self.CLASSES))
        if unknown:
            raise DatasetError(f"GeneratedClsDataset draws {', '.join(self.CLASSES)}; it cannot draw {unknown}")
        if size < 8:
            raise DatasetError(f"GeneratedClsDataset: size must be at least 8 pixels, got {size}")
        self.length, self.size, self.split, self.noise = length, size, split, noise
        self.split_seed = zlib.crc32(split.encode())

    def __len__(self) -> int:
        return self.length

    def load(self, index: int):
        generator = torch.Generator().manual_seed(self.split_seed * 1_000_003 + index)
        label = int(torch.randint(len(self.classes), (), generator=generator))
        size = self.size
        radius = size * (0.18 + 0.14 * float(torch.rand((), generator=generator)))
        centre = radius + (size - 2 * radius) * torch.rand(2, generator=generator)
        rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
        mask = _shape_mask(self.classes[label], cols - centre[0], rows - centre[1], radius)
        background, foreground = torch.rand(2, 3, 1, 1, generator=generator) * 255
        if (foreground - background).abs().sum() < 150:
            foreground = 255 - background
        image = torch.where(mask, foreground, background)
        image = image + self.noise * torch.randn(3, size, size, generator=generator)
        return image.round().clamp(0, 255).to(torch.uint8), label, {"file": f"{self.split}[{index}]"}
