"""Track runs in MLflow: the config as params, the logged scalars as metrics, pictures and the best checkpoint."""

from __future__ import annotations

import atexit
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from trainyard.errors import ConfigError
from trainyard.hooks.hook import Hook

_PARAM_VALUE_LIMIT = 6000  # MLflow refuses longer parameter values


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise ConfigError("MLflowLoggerHook needs mlflow: pip install 'trainyard[mlflow]'") from None
    return mlflow


def git_commit(directory: Path) -> str | None:
    """The commit checked out in ``directory`` (with ``+dirty`` for uncommitted changes), or None outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory, capture_output=True, text=True, timeout=10)
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


_WHAT_WORKS = ("leave tracking_uri unset for the local default sqlite:///mlruns/mlflow.db, or give "
               "'sqlite:///<folder>/mlflow.db' or a server 'http://host:5000'")


def check_tracking_uri(uri: str, where: str) -> None:
    """Refuse a local MLflow store that cannot work when the hook is built, not at the first logged line.

    Only local stores are checked (a folder, ``sqlite:///``): a server is not contacted here.
    """
    scheme = urlparse(uri).scheme
    if scheme in ("", "file"):
        from mlflow import environment_variables

        allowed = getattr(environment_variables, "MLFLOW_ALLOW_FILE_STORE", None)
        if allowed is not None and not allowed.get():
            raise ConfigError(f"MLflowLoggerHook {where}={uri!r} is a folder (MLflow's file store), which this MLflow "
                              f"refuses unless MLFLOW_ALLOW_FILE_STORE=true; {_WHAT_WORKS}")
        _require_writable(Path(uri[len("file://"):] if scheme == "file" else uri), uri, where)
    elif scheme == "sqlite" and uri[len("sqlite:///"):]:
        _require_writable(Path(uri[len("sqlite:///"):]).parent, uri, where)


def _require_writable(folder: Path, uri: str, where: str) -> None:
    """``folder`` exists or can be created, and can be written to."""
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        reason = "is a file" if not existing.is_dir() else "cannot be written to"
        raise ConfigError(f"MLflowLoggerHook {where}={uri!r}: {existing} {reason}; {_WHAT_WORKS}")


class MLflowLoggerHook(Hook):
    """Logs a training run to MLflow, on rank 0 only.

    - params: the resolved config, flattened (``optim_wrapper.optimizer.lr``);
    - metrics: every line the logger writes (``train/loss`` at the log interval,
      ``val/mIoU`` after each validation), at the training iteration;
    - tags: ``git_commit`` of the working directory (``+dirty`` with uncommitted
      changes), ``trainyard_version``, ``run_dir``, ``best_checkpoint``;
    - artifacts: the run's ``vis/`` pictures, and the best checkpoint's path
      (``best_checkpoint.txt``) or, with ``log_checkpoint='file'``, the file.

    With no ``tracking_uri`` (and no ``MLFLOW_TRACKING_URI``), runs go to a local
    store in ``mlruns/``: ``sqlite:///mlruns/mlflow.db``, artifacts in
    ``mlruns/artifacts``. It works with no server, and ``mlflow ui
    --backend-store-uri sqlite:///mlruns/mlflow.db`` shows it. A resumed run
    continues the same MLflow run: its id travels in the checkpoint.

    Args:
        experiment_name: default: the work dir's name (the config's name).
        run_name: default: the run directory's name (its start time).
        tracking_uri: any MLflow tracking URI (``http://server:5000``, ``sqlite:///...``).
        log_checkpoint: ``'path'``, ``'file'`` or ``None``.
        tags: extra tags.
    """

    priority = "LOW"

    def __init__(self, experiment_name: str | None = None, run_name: str | None = None, tracking_uri: str | None = None,
                 log_checkpoint: str | None = "path", tags: Mapping[str, str] | None = None) -> None:
        if log_checkpoint not in ("path", "file", None):
            raise ConfigError(f"MLflowLoggerHook log_checkpoint must be 'path', 'file' or None, got {log_checkpoint!r}")
        _mlflow()
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if uri:
            check_tracking_uri(uri, "tracking_uri" if tracking_uri else "MLFLOW_TRACKING_URI")
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.tracking_uri = tracking_uri
        self.log_checkpoint = log_checkpoint
        self.tags = dict(tags or {})
        self.run_id: str | None = None
        self._client: Any = None
        self._open = False

    def _uri(self) -> str:
        if self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"):
            return self.tracking_uri or os.environ["MLFLOW_TRACKING_URI"]
        store = Path("mlruns").resolve()
        store.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{store / 'mlflow.db'}"

    def before_run(self, runner: Any) -> None:
        if runner.rank != 0 or runner.train_loop is None:
            return
        mlflow = _mlflow()
        uri = self._uri()
        self._client = mlflow.MlflowClient(tracking_uri=uri)
        if self.run_id is not None:  # resumed: the checkpoint named the run
            self._client.update_run(self.run_id, status="RUNNING")
        else:
            name = self.experiment_name or Path(runner.work_dir).name
            experiment = self._client.get_experiment_by_name(name)
            if experiment is not None:
                experiment_id = experiment.experiment_id
            else:  # a local database keeps its artifacts beside it (MLflow's default would be ./mlartifacts)
                artifacts = (Path(uri[len("sqlite:///"):]).parent / "artifacts").resolve().as_uri() if uri.startswith("sqlite:///") else None
                experiment_id = self._client.create_experiment(name, artifact_location=artifacts)
            from trainyard import __version__

            tags = {"trainyard_version": __version__, "run_dir": str(runner.run_dir), **self.tags}
            commit = git_commit(Path.cwd())
            if commit:
                tags["git_commit"] = commit
            run = self._client.create_run(experiment_id, run_name=self.run_name or runner.run_dir.name, tags=tags)
            self.run_id = run.info.run_id
            self._log_params(runner.cfg)
        self._open = True
        runner.writer.listeners.append(self)
        atexit.register(self._end, "FAILED")  # a run that raised never reaches after_run
        runner.logger.info(f"MLflow run {self.run_id} at {uri}")

    def _log_params(self, cfg: Any) -> None:
        from mlflow.entities import Param

        from trainyard.config import flatten

        flat = flatten(cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg))
        params = [Param(key[:250], str(value)[:_PARAM_VALUE_LIMIT]) for key, value in sorted(flat.items())]
        for start in range(0, len(params), 100):
            self._client.log_batch(self.run_id, params=params[start : start + 100])

    def add_scalars(self, scalars: Mapping[str, Any], step: int, prefix: str) -> None:
        """Called by the run's writer for every logged line."""
        if not self._open:
            return
        import math
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(f"{prefix}{key}", float(value), now, step) for key, value in scalars.items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)]
        if metrics:
            self._client.log_batch(self.run_id, metrics=metrics)

    def after_run(self, runner: Any) -> None:
        if not self._open:
            return
        vis = runner.run_dir / "vis"
        if vis.is_dir() and any(vis.iterdir()):
            self._client.log_artifacts(self.run_id, str(vis), "vis")
        best = sorted(Path(runner.work_dir).glob("best_*.pth"), key=lambda p: p.stat().st_mtime_ns)
        if best and self.log_checkpoint:
            self._client.set_tag(self.run_id, "best_checkpoint", str(best[-1].resolve()))
            if self.log_checkpoint == "file":
                self._client.log_artifact(self.run_id, str(best[-1]), "checkpoints")
            else:
                path_file = runner.run_dir / "best_checkpoint.txt"
                path_file.write_text(str(best[-1].resolve()) + "\n")
                self._client.log_artifact(self.run_id, str(path_file))
        interrupted = getattr(runner.train_loop, "interrupted", None)
        self._end("KILLED" if interrupted else "FINISHED")
        runner.writer.listeners.remove(self)

    def _end(self, status: str) -> None:
        if self._open:
            self._open = False
            self._client.set_terminated(self.run_id, status=status)

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")
