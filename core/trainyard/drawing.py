"""Drawing for pictures people read: the one module validation, test and predict pictures share.

Boxes with legible labels (on every supported torchvision), small images enlarged,
panels with titles, class legends in the dataset's palette, captions. The task
plugins compose their pictures from these; text is drawn with Pillow's built-in font.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence

import torch

__all__ = ["draw_boxes", "enlarge", "titled", "legend", "caption", "grid", "below"]


@functools.cache
def _filled_labels_supported() -> bool:
    from torchvision.utils import draw_bounding_boxes

    return "fill_labels" in inspect.signature(draw_bounding_boxes).parameters


def draw_boxes(image: torch.Tensor, boxes: torch.Tensor, labels: Sequence[str] | None, color: str, width: int = 2) -> torch.Tensor:
    """uint8 ``[3,H,W]`` with xyxy ``boxes`` outlined in ``color`` and their ``labels`` written on them.

    Labels are white on a band of the box's colour where torchvision can (0.23 and
    later), else in the box's colour.
    """
    from torchvision.utils import draw_bounding_boxes

    if not len(boxes):
        return image
    options = {"label_colors": "white", "fill_labels": True} if _filled_labels_supported() else {}
    return draw_bounding_boxes(image, boxes.float(), labels=list(labels) if labels is not None else None, colors=color, width=width, **options)


# panels, titles and legends ------------------------------------------------------

_WHITE, _INK = (255, 255, 255), (20, 20, 20)


@functools.cache
def _font(size: int) -> object:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # a scalable font (Pillow >= 10.1)
    except TypeError:  # pragma: no cover - older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def _to_pil(image: torch.Tensor) -> object:
    from PIL import Image

    return Image.fromarray(image.cpu().permute(1, 2, 0).numpy())


def _from_pil(picture: object) -> torch.Tensor:
    import numpy as np

    return torch.from_numpy(np.asarray(picture.convert("RGB")).copy()).permute(2, 0, 1)


def enlarge(image: torch.Tensor, min_side: int, nearest: bool = False) -> torch.Tensor:
    """``image`` (``[C,H,W]`` or a label map ``[H,W]``) scaled up so its short side is at least ``min_side``.

    ``nearest`` keeps label values (and pixels crisp); otherwise bilinear. Larger
    images are returned as they are.
    """
    from torchvision.transforms.v2 import functional as F

    height, width = image.shape[-2:]
    factor = min_side / min(height, width)
    if factor <= 1:
        return image
    size = [round(height * factor), round(width * factor)]
    if nearest:
        mode = F.InterpolationMode.NEAREST_EXACT
        return F.resize(image[None] if image.dim() == 2 else image, size, interpolation=mode).reshape(*image.shape[:-2], *size)
    return F.resize(image, size, antialias=True)


def titled(image: torch.Tensor, title: str, font_size: int = 14) -> torch.Tensor:
    """``image`` under a white band holding ``title``."""
    from PIL import Image, ImageDraw

    band = font_size + 10
    picture = Image.new("RGB", (image.shape[-1], image.shape[-2] + band), _WHITE)
    picture.paste(_to_pil(image), (0, band))
    ImageDraw.Draw(picture).text((4, 4), title, fill=_INK, font=_font(font_size))
    return _from_pil(picture)


def legend(entries: Sequence[tuple[str, Sequence[int]]], width: int, font_size: int = 13) -> torch.Tensor:
    """A white band of colour swatches with their names, wrapped to ``width`` pixels."""
    from PIL import Image, ImageDraw

    font = _font(font_size)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_height, swatch = font_size + 8, font_size
    placed, x, y = [], 6, 6
    for name, colour in entries:
        item_width = swatch + 6 + int(measure.textlength(name, font=font)) + 14
        if x > 6 and x + item_width > width:
            x, y = 6, y + line_height
        placed.append((x, y, name, tuple(int(c) for c in colour)))
        x += item_width
    picture = Image.new("RGB", (width, y + line_height + 2), _WHITE)
    draw = ImageDraw.Draw(picture)
    for x, y, name, colour in placed:
        draw.rectangle([x, y + 1, x + swatch, y + 1 + swatch], fill=colour, outline=_INK)
        draw.text((x + swatch + 6, y), name, fill=_INK, font=font)
    return _from_pil(picture)


def caption(image: torch.Tensor, lines: Sequence[str], colour: str = "#1f1f1f", font_size: int = 14) -> torch.Tensor:
    """``image`` with ``lines`` of white text on a dark band across its top-left."""
    from PIL import ImageDraw

    picture = _to_pil(image)
    draw = ImageDraw.Draw(picture)
    font = _font(font_size)
    width = max(int(draw.textlength(line, font=font)) for line in lines) + 10 if lines else 0
    height = len(lines) * (font_size + 4) + 6
    draw.rectangle([0, 0, width, height], fill=colour)
    for index, line in enumerate(lines):
        draw.text((5, 3 + index * (font_size + 4)), line, fill=_WHITE, font=font)
    return _from_pil(picture)


def grid(rows: Sequence[Sequence[torch.Tensor]], gap: int = 6) -> torch.Tensor:
    """Panels laid out in rows on white, each row as tall as its tallest panel."""
    row_pictures = []
    for row in rows:
        height = max(p.shape[-2] for p in row)
        padded = [_pad(p, height, p.shape[-1]) for p in row]
        spaced = [piece for p in padded for piece in (p, _blank(height, gap))][:-1]
        row_pictures.append(torch.cat(spaced, dim=2))
    width = max(r.shape[-1] for r in row_pictures)
    spaced = [piece for r in row_pictures for piece in (_pad(r, r.shape[-2], width), _blank(gap, width))][:-1]
    return torch.cat(spaced, dim=1)


def below(picture: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
    """``band`` (a legend) under ``picture``, both padded to the wider one."""
    width = max(picture.shape[-1], band.shape[-1])
    return torch.cat([_pad(picture, picture.shape[-2], width), _pad(band, band.shape[-2], width)], dim=1)


def _blank(height: int, width: int) -> torch.Tensor:
    return torch.full((3, height, width), 255, dtype=torch.uint8)


def _pad(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if image.shape[-2:] == (height, width):
        return image
    canvas = _blank(height, width)
    canvas[:, : image.shape[-2], : image.shape[-1]] = image
    return canvas
