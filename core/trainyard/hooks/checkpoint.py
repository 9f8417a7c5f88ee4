"""When to save checkpoints and which to keep (the writing is :mod:`trainyard.checkpoint`'s)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from trainyard.checkpoint import remove_checkpoint
from trainyard.checkpointer import SAVE_FORMATS
from trainyard.errors import ConfigError
from trainyard.hooks.hook import Hook


_PERIODIC = re.compile(r"^(epoch|iter)_(\d+)\.(?:pth|dcp)$")



class CheckpointHook(Hook):
    """Saves every ``interval`` epochs or iterations, at the end, and at each new best score.

    Files sit in the work directory: ``epoch_{N}.pth`` at the end of epoch N (with
    ``by_epoch``), ``iter_{N}.pth`` after iteration N (and for a save that falls
    inside an epoch: a stop, an interrupt), and ``best_{metric}_{epoch|iter}_{N}.pth``;
    with ``save_format='dcp'`` each is a directory ``*.dcp`` instead
    (:mod:`trainyard.checkpointer` tells the two storages apart).

    Which files to keep is decided from what is on disk, not from a list carried in
    the state, so checkpoints left by an interrupted run, or by a crash between a
    save and a deletion, are cleaned up by the next save: the newest
    ``max_keep_ckpts`` periodic files (epoch and iteration ones together, in training
    order) and one best file per metric stay. An older file is deleted only after the
    newer one is safely written.

    Args:
        interval: epochs (``by_epoch``) or iterations between saves; ``-1`` never.
        by_epoch: count ``interval`` in epochs (default) or iterations.
        max_keep_ckpts: keep only the newest N periodic checkpoints; ``-1`` keeps all.
        save_last: save when training ends, if that step was not saved already.
        save_on_interrupt: save when a signal (Ctrl-C, SIGTERM) stops training early.
        save_best: metric to track (``'mIoU'``), ``'auto'`` for the first metric, or None.
        rule: ``'greater'`` or ``'less'`` is better; default ``'less'`` for names with
            ``loss``, else ``'greater'``.
        save_format: ``'auto'`` (a DCP directory for a sharded model, FSDP; else one
            file), ``'file'`` or ``'dcp'``.
        async_save: write DCP checkpoints in the background (``save_format`` ``'dcp'``,
            or ``'auto'`` under FSDP); training waits only while the state is copied.
    """

    priority = "VERY_LOW"

    def __init__(
        self,
        interval: int = -1,
        by_epoch: bool = True,
        max_keep_ckpts: int = -1,
        save_last: bool = True,
        save_on_interrupt: bool = True,
        save_best: str | None = None,
        rule: str | None = None,
        save_format: str = "auto",
        async_save: bool = False,
    ) -> None:
        if rule not in (None, "greater", "less"):
            raise ConfigError(f"CheckpointHook rule must be 'greater' or 'less', got {rule!r}")
        if save_format not in SAVE_FORMATS:
            raise ConfigError(f"CheckpointHook save_format must be one of {', '.join(SAVE_FORMATS)}, got {save_format!r}")
        if async_save and save_format == "file":
            raise ConfigError("CheckpointHook async_save=True needs save_format='dcp' (or 'auto' under FSDP); a single file is written by rank 0 alone")
        self.save_format = save_format
        self.async_save = async_save
        self.interval = interval
        self.by_epoch = by_epoch
        self.max_keep_ckpts = max_keep_ckpts
        self.save_last = save_last
        self.save_on_interrupt = save_on_interrupt
        self.save_best = save_best
        self.rule = rule
        self.best_score: float | None = None
        self.best_file: str | None = None
        self._last_saved_iter = -1

    @staticmethod
    def _at_epoch_end(runner: Any) -> bool:
        return runner.iter % runner.train_loop.iters_per_epoch == 0

    def _save(self, runner: Any, filename: str, on_written: Any = None) -> Path | None:
        """Save through the runner's checkpointer; ``on_written(path)`` runs on rank 0 once the checkpoint is complete."""
        async_save = self.async_save and runner.checkpointer.storage_for(self.save_format) == "dcp"
        path = runner.checkpointer.save(filename, self.save_format, async_save, on_written)
        self._last_saved_iter = runner.iter
        if path is not None:
            runner.logger.info(f"saved checkpoint {path}")
        return path

    def _save_periodic(self, runner: Any) -> None:
        at_epoch_end = self.by_epoch and self._at_epoch_end(runner)
        name = f"epoch_{runner.epoch}.pth" if at_epoch_end else f"iter_{runner.iter}.pth"

        def written(path: Path) -> None:
            if self.max_keep_ckpts > 0:
                self._remove_old_periodic(runner, keep=path.name)

        self._save(runner, name, written)

    def _remove_old_periodic(self, runner: Any, keep: str) -> None:
        """Keep the newest ``max_keep_ckpts`` periodic files on disk, the one just written among them."""
        iters_per_epoch = runner.train_loop.iters_per_epoch
        found = []
        for path in runner.work_dir.iterdir():
            match = _PERIODIC.match(path.name)
            if match and path.name != keep:
                found.append((int(match[2]) * (iters_per_epoch if match[1] == "epoch" else 1), path.name))
        for _, name in sorted(found)[: max(len(found) - (self.max_keep_ckpts - 1), 0)]:
            remove_checkpoint(runner.work_dir / name)

    def overrides(self, point: str) -> bool:
        """Saving by epoch, synchronously: nothing to do after an iteration, so not called there (unless a subclass is)."""
        if point == "after_train_iter" and type(self).after_train_iter is CheckpointHook.after_train_iter:
            return self.async_save or (not self.by_epoch and self.interval > 0)
        return super().overrides(point)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if self.async_save:
            runner.checkpointer.poll()
        if not self.by_epoch and self.interval > 0 and runner.iter % self.interval == 0:
            self._save_periodic(runner)

    def after_train_epoch(self, runner: Any) -> None:
        # an epoch cut short (a stop, an interrupt) is not a finished epoch: after_train saves it
        if self.by_epoch and self.interval > 0 and runner.epoch % self.interval == 0 and self._at_epoch_end(runner):
            self._save_periodic(runner)

    def after_train(self, runner: Any) -> None:
        wanted = self.save_on_interrupt if getattr(runner.train_loop, "interrupted", None) else self.save_last
        if wanted and self._last_saved_iter != runner.iter:
            self._save_periodic(runner)
        runner.checkpointer.wait()

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
        metric = name.replace("/", "_")
        filename = f"best_{metric}_{step}.pth"
        self.best_score, self.best_file = score, filename

        def written(path: Path) -> None:
            runner.logger.info(f"new best {name} = {score:.4f}: saved {path}")
            earlier = re.compile(rf"^best_{re.escape(metric)}_(epoch|iter)_\d+\.(?:pth|dcp)$")
            for other in runner.work_dir.iterdir():
                if earlier.match(other.name) and other.name != path.name:
                    remove_checkpoint(other)

        async_save = self.async_save and runner.checkpointer.storage_for(self.save_format) == "dcp"
        runner.checkpointer.save(filename, self.save_format, async_save, written)  # a best file is not a periodic one

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        self._last_saved_iter = runner.iter  # the step resumed from is saved already

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_file": self.best_file}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_score, self.best_file = state["best_score"], state["best_file"]
