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

__all__ = ["draw_boxes", "draw_labelled_boxes", "place_labels", "enlarge", "titled", "legend", "caption", "grid", "below"]


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


def place_labels(boxes: Sequence[Sequence[float]], sizes: Sequence[tuple[int, int]],
                 canvas: tuple[int, int]) -> list[tuple[int, int] | None]:
    """Top-left corners for each box's label (``sizes``: width, height), so that no two labels overlap.

    Each label goes above its box's top-left corner, else just inside it, else below
    the box, else inside its bottom; a label that overlaps an earlier one everywhere
    gets None and is not drawn (give the boxes best first). Labels stay on the
    ``canvas`` (height, width).
    """
    height, width = canvas
    placed: list[tuple[int, int, int, int]] = []
    corners: list[tuple[int, int] | None] = []
    for (x1, y1, _, y2), (label_width, label_height) in zip(boxes, sizes):
        left = int(min(max(x1, 0), max(width - label_width, 0)))
        corner = None
        for top in (y1 - label_height, y1, y2, y2 - label_height):
            top = int(min(max(top, 0), max(height - label_height, 0)))
            rectangle = (left, top, left + label_width, top + label_height)
            if not any(_overlap(rectangle, other) for other in placed):
                corner = (left, top)
                placed.append(rectangle)
                break
        corners.append(corner)
    return corners


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def draw_labelled_boxes(image: torch.Tensor, boxes: torch.Tensor, labels: Sequence[str], colours: Sequence[Sequence[int]],
                        width: int = 2, font_size: int = 12) -> torch.Tensor:
    """uint8 ``[3,H,W]`` with xyxy ``boxes`` outlined in their ``colours`` and labels that never overlap.

    Labels are written on a band of their box's colour, placed by :func:`place_labels`
    (give the boxes best first: a label with no free place is left out, its box stays).
    """
    from PIL import ImageDraw

    picture = _to_pil(image)
    draw = ImageDraw.Draw(picture)
    font = _font(font_size)
    boxes_list = boxes.float().tolist()
    rgb = [tuple(int(c) for c in colour) for colour in colours]
    for box, colour in zip(boxes_list, rgb):
        draw.rectangle(box, outline=colour, width=width)
    sizes = []
    for label in labels:
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        sizes.append((right - min(left, 0) + 6, bottom - min(top, 0) + 4))
    for label, corner, size, colour in zip(labels, place_labels(boxes_list, sizes, (image.shape[-2], image.shape[-1])), sizes, rgb):
        if corner is None:
            continue
        x, y = corner
        draw.rectangle([x, y, x + size[0] - 1, y + size[1] - 1], fill=colour)
        ink = _INK if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 150 else _WHITE
        draw.text((x + 3, y + 1), label, fill=ink, font=font)
    return _from_pil(picture)


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
