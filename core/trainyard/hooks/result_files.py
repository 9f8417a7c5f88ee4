"""``trainyard test --dump DIR --show-dir DIR``: every prediction of an evaluation in the field's file format, and its picture.

The model's task (its ``task`` attribute, a :class:`trainyard.inference.Task` in
``TASKS``) decides the format: a COCO results JSON for detection, PNG masks for
segmentation, a JSON line of top-k classes per image for classification.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from trainyard import dist
from trainyard.hooks.hook import Hook

logger = logging.getLogger("trainyard")


def prepare_folder(folder: str | Path, option: str) -> Path:
    """``folder`` created (with its parents) and shown writable, before any image is evaluated; else one line naming ``option``."""
    import tempfile

    from trainyard.errors import TrainyardError

    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise TrainyardError(f"{option} {folder} is a file; give a folder (it is created when missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise TrainyardError(f"{option} {folder} cannot be created or written ({exc.strerror or exc}); "
                             "give a folder you can write to") from None
    return path


class ResultFilesHook(Hook):
    """Writes each validation or test image's prediction to ``dump_dir`` and its picture to ``show_dir``.

    Per-image files (masks, pictures) are written by the rank that evaluated the
    image; the result file gathers every rank's records and is written by rank 0 in
    dataset order after the last batch.

    Args:
        dump_dir: folder of the result files (None: none).
        show_dir: folder of one picture per image, as ``trainyard predict`` draws it (None: none).
        score_thr: the lowest detection score drawn in the pictures (the result file keeps every detection).
    """

    priority = "LOW"

    def __init__(self, dump_dir: str | None = None, show_dir: str | None = None, score_thr: float = 0.3) -> None:
        self.dump_dir = Path(dump_dir) if dump_dir else None
        self.show_dir = Path(show_dir) if show_dir else None
        self.score_thr = score_thr
        self._task: Any = None
        self._records: list[dict[str, Any]] = []
        self._stems: set[str] = set()
        self._warned_undrawable = False

    def before_val(self, runner: Any) -> None:
        self._start(runner, "val")

    def before_test(self, runner: Any) -> None:
        self._start(runner, "test")

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._write_batch(data_batch, outputs)

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._write_batch(data_batch, outputs)

    def after_val_epoch(self, runner: Any, metrics: Any = None) -> None:
        self._finish(runner)

    def after_test_epoch(self, runner: Any, metrics: Any = None) -> None:
        self._finish(runner)

    def _start(self, runner: Any, split: str) -> None:
        from trainyard.inference import task_for

        metainfo = getattr(runner.dataloader(split).dataset, "metainfo", None) or {}
        self._task = task_for(runner.unwrapped_model, metainfo)
        self._records, self._stems = [], set()
        for folder, option in ((self.dump_dir, "dump_dir"), (self.show_dir, "show_dir")):
            if folder is not None:
                prepare_folder(folder, f"ResultFilesHook.{option}")

    def _write_batch(self, data_batch: Any, outputs: Any) -> None:
        metas = list(data_batch.get("meta") or [{} for _ in outputs])
        results = self._task.results(outputs, data_batch)
        for position, (result, meta) in enumerate(zip(results, metas)):
            stem = self._stem(meta, position)
            if self.dump_dir is not None:
                self._records.append(self._task.result_record(result, meta, self.dump_dir, stem))
            if self.show_dir is not None:
                self._show(data_batch["inputs"][position], meta, result, stem)

    def _stem(self, meta: dict[str, Any], position: int) -> str:
        """The image's file name without extension (its dataset index when it has no file), unique on this rank."""
        index = meta.get("index", len(self._records) + position)
        stem = re.sub(r"[^\w.-]+", "_", Path(str(meta["file"])).stem).strip("_") if meta.get("file") else ""
        stem = stem or f"{index:06d}"
        if stem in self._stems:
            stem = f"{stem}_{index}"
        self._stems.add(stem)
        return stem

    def _show(self, image: torch.Tensor, meta: dict[str, Any], result: dict[str, Any], stem: str) -> None:
        from PIL import Image
        from torchvision.transforms.v2 import functional as F

        image = image.detach().cpu()
        if image.dtype != torch.uint8:
            if not self._warned_undrawable:
                logger.warning("--show-dir: the test pipeline gives float images (normalised in the pipeline?); no picture drawn")
                self._warned_undrawable = True
            return
        size = list(meta.get("ori_size") or image.shape[-2:])
        if list(image.shape[-2:]) != size:  # results are in original pixels: draw them on the image at that size
            image = F.resize(image, size, antialias=True)
        picture = self._task.draw(image, result, score_thr=self.score_thr)
        if picture is not None:
            Image.fromarray(picture.permute(1, 2, 0).numpy()).save(self.show_dir / f"{stem}.png", compress_level=1)

    def _finish(self, runner: Any) -> None:
        if self.dump_dir is None:
            return
        gathered = [record for part in dist.all_gather_objects(self._records) for record in part]
        gathered.sort(key=lambda record: (record.get("index") is None, record.get("index") or 0))
        self._records = []
        if runner.rank == 0:
            path = self._task.write_result_file(gathered, self.dump_dir)
            logger.info(f"results of {len(gathered)} images written to {path}")
