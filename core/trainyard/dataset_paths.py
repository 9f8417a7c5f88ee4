"""OpenMMLab's dataset path rules: ``data_root`` joined to relative paths, ``data_prefix`` as a dict.

mmdet, mmseg and mmpretrain datasets take ``data_root`` and read a relative
``ann_file`` and ``data_prefix`` under it, so one ``data_root`` moves a whole split
(``ann_file='annotations/instances_train2017.json'``, ``data_prefix=dict(img='train2017/')``).
trainyard's datasets that take ``data_root`` follow the same rules through these two
functions, so a converted config keeps its paths.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from trainyard.errors import DatasetError

__all__ = ["under_data_root", "data_prefix_folders"]


def under_data_root(path: str | os.PathLike[str], data_root: str | os.PathLike[str] | None) -> Path:
    """``path`` under ``data_root`` when it is relative and a root is given; otherwise ``path`` as it is."""
    if data_root is None or os.path.isabs(path):
        return Path(path)
    return Path(data_root) / path


def data_prefix_folders(data_prefix: str | os.PathLike[str] | Mapping[str, str] | None,
                        kinds: Mapping[str, Sequence[str]], dataset: str) -> dict[str, str | None]:
    """The folder ``data_prefix`` names for each kind of file (None where it names none).

    ``kinds`` maps each kind to the keys OpenMMLab spells it with, first kind first:
    ``{'img': ('img', 'img_path'), 'seg': ('seg', 'seg_map_path')}``. A text prefix is
    the first kind's folder. A dict key that names no kind is an error listing the
    accepted ones, so a misspelt key is not silently dropped.
    """
    folders: dict[str, str | None] = dict.fromkeys(kinds)
    if data_prefix is None:
        return folders
    if isinstance(data_prefix, (str, os.PathLike)):
        folders[next(iter(kinds))] = os.fspath(data_prefix)
        return folders
    if not isinstance(data_prefix, Mapping):
        raise DatasetError(f"{dataset}: data_prefix must be a folder or a dict like dict(img='train2017/'), got {data_prefix!r}")
    accepted = [key for keys in kinds.values() for key in keys]
    unknown = sorted(set(data_prefix) - set(accepted))
    if unknown:
        raise DatasetError(f"{dataset}: data_prefix has keys {unknown} it does not read; it reads {', '.join(accepted)}")
    for kind, keys in kinds.items():
        folders[kind] = next((os.fspath(data_prefix[key]) for key in keys if key in data_prefix), None)
    return folders
