"""When to save checkpoints and which to keep (the writing is :mod:`trainyard.checkpoint`'s)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from trainyard import checkpoint
from trainyard.errors import ConfigError
from trainyard.hooks.hook import Hook


class CheckpointHook(Hook):
    """Saves every ``interval`` epochs or iterations, at the end, and at each new best score.

    Files sit in the work directory: ``epoch_{N}.pth`` or ``iter_{N}.pth``, and
    ``best_{metric}_{epoch|iter}_{N}.pth``. An older file is deleted only after the
    newer one is safely written.

    Args:
        interval: epochs (``by_epoch``) or iterations between saves; ``-1`` never.
        by_epoch: count ``interval`` in epochs (default) or iterations.
        max_keep_ckpts: keep only the newest N periodic checkpoints; ``-1`` keeps all.
        save_last: save when training ends, if that step was not saved already.
        save_best: metric to track (``'mIoU'``), ``'auto'`` for the first metric, or None.
        rule: ``'greater'`` or ``'less'`` is better; default ``'less'`` for names with
            ``loss``, else ``'greater'``.
    """

    priority = "VERY_LOW"

    def __init__(
        self,
        interval: int = -1,
        by_epoch: bool = True,
        max_keep_ckpts: int = -1,
        save_last: bool = True,
        save_best: str | None = None,
        rule: str | None = None,
    ) -> None:
        if rule not in (None, "greater", "less"):
            raise ConfigError(f"CheckpointHook rule must be 'greater' or 'less', got {rule!r}")
        self.interval = interval
        self.by_epoch = by_epoch
        self.max_keep_ckpts = max_keep_ckpts
        self.save_last = save_last
        self.save_best = save_best
        self.rule = rule
        self.kept: list[str] = []
        self.best_score: float | None = None
        self.best_file: str | None = None
        self._last_saved_iter = -1

    def _save(self, runner: Any, filename: str) -> Path | None:
        path = checkpoint.save(runner, filename)
        self._last_saved_iter = runner.iter
        if path is not None:
            runner.logger.info(f"saved checkpoint {path}")
        return path

    def _save_periodic(self, runner: Any) -> None:
        name = f"epoch_{runner.epoch}.pth" if self.by_epoch else f"iter_{runner.iter}.pth"
        self._save(runner, name)
        self.kept.append(name)
        if self.max_keep_ckpts > 0 and runner.rank == 0:
            while len(self.kept) > self.max_keep_ckpts:
                (runner.work_dir / self.kept.pop(0)).unlink(missing_ok=True)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if not self.by_epoch and self.interval > 0 and runner.iter % self.interval == 0:
            self._save_periodic(runner)

    def after_train_epoch(self, runner: Any) -> None:
        if self.by_epoch and self.interval > 0 and runner.epoch % self.interval == 0:
            self._save_periodic(runner)

    def after_train(self, runner: Any) -> None:
        if self.save_last and self._last_saved_iter != runner.iter:
            self._save_periodic(runner)

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        if not self.save_best or not metrics or runner.train_loop is None:
            return
        name = next(iter(metrics)) if self.save_best == "auto" else self.save_best
        if name not in metrics:
            raise ConfigError(f"CheckpointHook save_best='{name}', but validation reported {sorted(metrics)}")
        score = float(metrics[name])
        rule = self.rule or ("less" if "loss" in name.lower() else "greater")
        best = self.best_score if self.best_score is not None else (-math.inf if rule == "greater" else math.inf)
        if not (score > best if rule == "greater" else score < best):
            return
        step = f"epoch_{runner.epoch}" if self.by_epoch else f"iter_{runner.iter}"
        filename = f"best_{name.replace('/', '_')}_{step}.pth"
        previous = self.best_file
        self.best_score, self.best_file = score, filename
        checkpoint.save(runner, filename)
        runner.logger.info(f"new best {name} = {score:.4f}: saved {runner.work_dir / filename}")
        if previous and previous != filename and runner.rank == 0:
            (runner.work_dir / previous).unlink(missing_ok=True)

    def state_dict(self) -> dict[str, Any]:
        return {"kept": list(self.kept), "best_score": self.best_score, "best_file": self.best_file}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kept = list(state["kept"])
        self.best_score, self.best_file = state["best_score"], state["best_file"]
