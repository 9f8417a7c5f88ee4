"""What ``trainyard predict`` writes: ``predictions.jsonl``, the task's own files (masks) and pictures under ``vis/``."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainyard.inference import Predictor

__all__ = ["WrittenPredictions", "write_predictions"]


@dataclass
class WrittenPredictions:
    """Where the results went, and how fast they came."""

    out: Path
    count: int
    seconds: float
    pictures: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        return (f"predicted {self.count} images in {self.seconds:.1f} s ({self.count / max(self.seconds, 1e-9):.1f} images/s): "
                f"results in {self.out / 'predictions.jsonl'}, pictures in {self.out / 'vis'}")


def _unique_stem(source: str, used: set[str]) -> str:
    """A file stem per input, unique within one call (two ``a.png`` from different folders become ``a`` and ``a_1``)."""
    stem = Path(source).stem if source and not source.startswith("input ") else source.replace(" ", "_")
    candidate, number = stem, 1
    while candidate in used:
        candidate, number = f"{stem}_{number}", number + 1
    used.add(candidate)
    return candidate


def write_predictions(predictor: Predictor, items: Sequence[tuple[str, Any]], out: Path, **options: Any) -> WrittenPredictions:
    """Predict ``items`` (``(source, image)`` pairs, as :func:`trainyard.inference.expand_inputs` gives) into the folder ``out``.

    One JSON line per image (source, size, the task's record and file names), the
    task's files, and a picture per image in ``out/vis`` when the task draws one.
    ``options`` go to the task (``topk``, ``score_thr``).
    """
    from PIL import Image

    from trainyard.loops import Progress

    (out / "vis").mkdir(parents=True, exist_ok=True)
    progress = Progress(len(items), "predict", enabled=True)
    used: set[str] = set()
    written = WrittenPredictions(out, len(items), 0.0)
    start = time.perf_counter()
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as records:
        for done, prediction in enumerate(predictor.predict([item for _, item in items], **options), 1):
            source = items[done - 1][0]
            stem = _unique_stem(source, used)
            record = {"source": source, "height": prediction.image.shape[-2], "width": prediction.image.shape[-1]}
            record.update(predictor.task.record(prediction.result))
            record.update(predictor.task.save(prediction.result, out, stem))
            picture = predictor.draw(prediction)
            if picture is not None:
                written.pictures.append(out / "vis" / f"{stem}.png")
                Image.fromarray(picture.permute(1, 2, 0).numpy()).save(written.pictures[-1])
                record["picture"] = str(written.pictures[-1].relative_to(out))
            records.write(json.dumps(record) + "\n")
            progress.update(done)
    progress.close()
    written.seconds = time.perf_counter() - start
    return written
