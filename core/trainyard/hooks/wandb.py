"""Track runs in Weights & Biases: the config, the logged scalars, pictures and the best checkpoint, as MLflowLoggerHook does."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainyard.errors import ConfigError
from trainyard.hooks.hook import Hook

_STEP = "iter"
"""The x axis of every chart: the training iteration the line was logged at (a resumed run may log an iteration again)."""


def _wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise ConfigError("WandbLoggerHook needs wandb: pip install 'trainyard[wandb]'") from None
    return wandb


class WandbLoggerHook(Hook):
    """Logs a training run to Weights & Biases, on rank 0 only.

    - config: the resolved config, flattened (``optim_wrapper.optimizer.lr``), with
      ``trainyard_version``, ``git_commit`` (``+dirty`` with uncommitted changes) and ``run_dir``;
    - metrics: every line the logger writes (``train/loss`` at the log interval,
      ``val/mIoU`` after each validation), charted against ``iter``, the training iteration;
    - pictures: the run's ``vis/`` pictures (validation samples, confusion matrices) as
      ``wandb.Image``, after each validation and at the end;
    - the best checkpoint: its path in the run summary (``best_checkpoint``) or, with
      ``log_checkpoint='file'``, the file as a ``model`` artifact.

    ``WANDB_MODE=offline`` works with no account and no network: the run is kept
    under ``dir`` (default: ``WANDB_DIR``, else the work dir) for a later
    ``wandb sync``. A resumed run continues the same W&B run: its id travels in the
    checkpoint. Without wandb installed the config fails at once, naming the extra.

    Args:
        project: default: the work dir's name (the config's name).
        name: the run's display name; default: the run directory's name (its start time).
        entity: the W&B team or user; default: yours.
        tags: W&B tags.
        log_checkpoint: ``'path'``, ``'file'`` or ``None``.
        dir: where wandb keeps its local files.
        init_kwargs: any other ``wandb.init`` argument (``group``, ``notes``, ``mode``, ...).
    """

    priority = "LOW"

    def __init__(self, project: str | None = None, name: str | None = None, entity: str | None = None,
                 tags: Sequence[str] | None = None, log_checkpoint: str | None = "path", dir: str | None = None,
                 init_kwargs: Mapping[str, Any] | None = None) -> None:
        if log_checkpoint not in ("path", "file", None):
            raise ConfigError(f"WandbLoggerHook log_checkpoint must be 'path', 'file' or None, got {log_checkpoint!r}")
        _wandb()
        self.project = project
        self.name = name
        self.entity = entity
        self.tags = list(tags or [])
        self.log_checkpoint = log_checkpoint
        self.dir = dir
        self.init_kwargs = dict(init_kwargs or {})
        self.run_id: str | None = None
        self._run: Any = None
        self._pictures_logged: set[str] = set()

    def before_run(self, runner: Any) -> None:
        if runner.rank != 0 or runner.train_loop is None:
            return
        import os

        wandb = _wandb()
        folder = Path(self.dir or os.environ.get("WANDB_DIR") or runner.work_dir)
        folder.mkdir(parents=True, exist_ok=True)
        options = {
            "project": self.project or Path(runner.work_dir).name,
            "name": self.name or runner.run_dir.name,
            "entity": self.entity,
            "tags": self.tags or None,
            "dir": str(folder),
            "config": self._config(runner),
            **self.init_kwargs,
        }
        if self.run_id is not None:  # resumed: the checkpoint named the run; its pictures so far were logged
            options.update(id=self.run_id, resume="allow")
            self._pictures_logged = {p.name for p in (Path(runner.run_dir) / "vis").glob("*.png")}
        self._run = wandb.init(**options)
        self.run_id = self._run.id
        self._run.define_metric(_STEP)
        self._run.define_metric("*", step_metric=_STEP)
        runner.writer.listeners.append(self)
        runner.logger.info(f"W&B run {self.run_id} ({'resumed' if 'resume' in options else 'new'}) in {folder}")

    def _config(self, runner: Any) -> dict[str, Any]:
        from trainyard import __version__
        from trainyard.config import flatten
        from trainyard.hooks.mlflow import git_commit

        cfg = runner.cfg
        flat = flatten(cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg))
        config = {key: value if _is_plain(value) else str(value) for key, value in sorted(flat.items())}
        config.update(trainyard_version=__version__, run_dir=str(runner.run_dir))
        commit = git_commit(Path.cwd())
        if commit:
            config["git_commit"] = commit
        return config

    def add_scalars(self, scalars: Mapping[str, Any], step: int, prefix: str) -> None:
        """Called by the run's writer for every logged line."""
        if self._run is None:
            return
        import math

        values = {f"{prefix}{key}": float(value) for key, value in scalars.items()
                  if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)}
        if values:
            self._run.log({**values, _STEP: step})

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        self._log_new_pictures(runner)

    def _log_new_pictures(self, runner: Any) -> None:
        """The ``vis/`` pictures written since the last call, each under its name without the iteration."""
        if self._run is None:
            return
        vis = Path(runner.run_dir) / "vis"
        new = sorted(p for p in vis.glob("*.png") if p.name not in self._pictures_logged) if vis.is_dir() else []
        if not new:
            return
        wandb = _wandb()
        for path in new:
            self._pictures_logged.add(path.name)
            found = re.fullmatch(r"(?P<name>.+)_iter(?P<iter>\d+)", path.stem)
            key, step = (found["name"], int(found["iter"])) if found else (path.stem, runner.iter)
            self._run.log({f"vis/{key}": wandb.Image(str(path)), _STEP: step})

    def after_run(self, runner: Any) -> None:
        if self._run is None:
            return
        self._log_new_pictures(runner)
        best = sorted(Path(runner.work_dir).glob("best_*.pth"), key=lambda p: p.stat().st_mtime_ns)
        if best and self.log_checkpoint:
            self._run.summary["best_checkpoint"] = str(best[-1].resolve())
            if self.log_checkpoint == "file":
                artifact = _wandb().Artifact(f"{self.run_id}-best", type="model", metadata={"path": str(best[-1].resolve())})
                artifact.add_file(str(best[-1]))
                self._run.log_artifact(artifact)
        if getattr(runner.train_loop, "interrupted", None):
            self._run.mark_preempting()  # a resume will continue it
        runner.writer.listeners.remove(self)
        run, self._run = self._run, None
        run.finish()

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")


def _is_plain(value: Any) -> bool:
    """A value W&B's config keeps as it is (JSON: numbers, strings, booleans, None, and lists of those)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
