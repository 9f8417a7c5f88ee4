"""A list of images and labels in a text file, as ImageNet's and many papers' splits ship."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trainyard import DatasetError, data_prefix_folders, under_data_root
from trainyard.images import read_image
from trainyard_cls.datasets.base import ClsDataset


class FileListDataset(ClsDataset):
    """``ann_file`` lines ``<path> <label>``; paths relative to ``data_prefix``.

    Labels are class indices. Blank lines and lines starting with ``#`` are skipped.
    A line that does not parse, or a label outside the class list, is an error naming
    the file and line.

    Args:
        ann_file: the list file.
        data_prefix: folder the image paths are relative to (default: the list's folder),
            or mmpretrain's ``dict(img_path=...)``.
        data_root: the folder a relative ``ann_file`` and ``data_prefix`` are under, as in
            mmpretrain (``data_root='data/imagenet'``, ``ann_file='meta/train.txt'``, ``data_prefix='train'``).
        classes: class names in label order; without them, ``num_classes`` names them
            ``0..K-1``, else the largest label in the file decides.
    """

    def __init__(self, ann_file: str, data_prefix: str | Mapping[str, str] | None = None, classes: Sequence[str] | None = None,
                 num_classes: int | None = None, data_root: str | None = None, **options: Any) -> None:
        list_file = under_data_root(ann_file, data_root)
        image_folder = data_prefix_folders(data_prefix, {"img": ("img_path", "img")}, type(self).__name__)["img"]
        if not list_file.is_file():
            raise DatasetError(f"annotation list not found: {list_file}")
        prefix = under_data_root(image_folder, data_root) if image_folder is not None else list_file.parent
        self.samples: list[tuple[str, int]] = []
        for number, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            path, _, label = text.rpartition(" ")
            if not path or not label.lstrip("-").isdigit():
                raise DatasetError(f"{list_file}:{number}: expected '<image path> <class index>', got {text!r}")
            self.samples.append((str(prefix / path.strip()), int(label)))
        if not self.samples:
            raise DatasetError(f"annotation list {list_file} names no images")
        if not classes:
            count = num_classes if num_classes is not None else max(label for _, label in self.samples) + 1
            classes = [str(i) for i in range(count)]
        super().__init__(classes=classes, **options)
        for path, label in self.samples:
            if not 0 <= label < len(self.classes):
                raise DatasetError(
                    f"{list_file}: image {path} has label {label}, outside the {len(self.classes)} classes (0-{len(self.classes) - 1})"
                )

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int):
        path, label = self.samples[index]
        return read_image(path), label, {"file": path}
