"""Find training runs and summarise them, from what they wrote: log, ``scalars.jsonl``, ``config.py``.

A run directory is ``work_dir/<timestamp>/`` holding the resolved ``config.py`` and
its log. Nothing is imported or executed from a run: the config is parsed as
literals, so a hundred runs are read in well under a second.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainyard.config import flatten, literal_assignments
from trainyard.errors import TrainyardError
from trainyard.run_status import RUN_STATUS

__all__ = ["RunSummary", "find_runs", "read_run", "read_runs", "differing_keys", "filter_runs", "sort_runs", "format_table"]

RUNNING_IF_WRITTEN_WITHIN_S = 600.0
"""A run whose log has no final status and was written this recently is taken as still running."""

_STATUS_LINE = re.compile(re.escape(RUN_STATUS) + r" (\w+) (?:after|at) iteration (\d+)(?:: (.*))?")
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")
_IGNORED_KEYS = ("work_dir", "launcher", "resume", "load_from", "overwrite")


@dataclass
class RunSummary:
    """One run as ``trainyard runs`` shows it."""

    run_dir: Path
    name: str
    started: str
    status: str
    """``finished``, ``interrupted``, ``failed``, ``running``, or ``stopped`` (ended without a final status: killed)."""
    iterations: int
    wall_s: float | None
    s_per_iter: float | None
    detail: str = ""
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    """``{'val/mIoU': {'best': ..., 'last': ..., 'best_step': ...}}``"""
    config: dict[str, Any] = field(default_factory=dict)
    differs: dict[str, Any] = field(default_factory=dict)
    """The config keys whose values differ between the runs listed together."""

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir), "name": self.name, "started": self.started, "status": self.status,
            "detail": self.detail, "iterations": self.iterations, "wall_s": self.wall_s, "s_per_iter": self.s_per_iter,
            "metrics": self.metrics, "differs": {k: _jsonable(v) for k, v in self.differs.items()},
        }


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else repr(value)


def find_runs(roots: Iterable[str | Path]) -> list[Path]:
    """Run directories under ``roots`` (a run directory itself counts), in name order."""
    found: set[Path] = set()
    for root in map(Path, roots):
        candidates = [root / "config.py"] if (root / "config.py").is_file() else root.rglob("config.py")
        for config in candidates:
            if (config.parent / "scalars.jsonl").is_file() or (config.parent / f"{config.parent.name}.log").is_file():
                found.add(config.parent)
    return sorted(found)


def read_config(path: Path) -> dict[str, Any]:
    """A saved ``config.py`` as a flat ``{dotted key: value}``; values that are not literals are kept as source text."""
    try:
        values, others = literal_assignments(path.read_text())
    except (OSError, SyntaxError, ValueError, MemoryError, RecursionError):
        return {}
    values.update({name: code for _, name, code in others if name is not None})
    return flatten(values)


def _lower_is_better(key: str) -> bool:
    name = key.rsplit("/", 1)[-1].lower()
    return "loss" in name or "error" in name or name.endswith("time")


def read_run(run_dir: Path, now: float | None = None) -> RunSummary:
    """Summarise one run directory."""
    log = run_dir / f"{run_dir.name}.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    status, detail, status_iteration = "stopped", "", None
    last_status_at = -1
    for match in _STATUS_LINE.finditer(text):
        status, status_iteration, detail = match.group(1), int(match.group(2)), (match.group(3) or "")
        last_status_at = match.end()
    if last_status_at < text.rfind("resumed from"):
        status, detail = "stopped", ""  # resumed after its last status: the resumed part has not ended yet
    if status == "stopped":
        written = max((p.stat().st_mtime for p in (log, run_dir / "scalars.jsonl") if p.is_file()), default=0.0)
        if (now or time.time()) - written < RUNNING_IF_WRITTEN_WITHIN_S:
            status = "running"
    stamps = [m.group(1) for m in (_TIMESTAMP.match(line) for line in (text.splitlines()[:1] + text.splitlines()[-1:])) if m]
    wall = None
    if len(stamps) == 2:
        first, last = (time.mktime(time.strptime(s, "%Y-%m-%d %H:%M:%S")) for s in stamps)
        wall = last - first
    iterations, times, metrics = 0, [], {}
    scalars = run_dir / "scalars.jsonl"
    if scalars.is_file():
        for line in scalars.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            step = int(record.get("step", 0))
            if any(key.startswith("train/") for key in record):
                iterations = max(iterations, step)
                if isinstance(record.get("train/time"), (int, float)):
                    times.append(record["train/time"])
            for key, value in record.items():
                if key == "step" or key.startswith("train/") or not isinstance(value, (int, float)) or isinstance(value, bool):
                    continue
                entry = metrics.setdefault(key, {"best": value, "best_step": step, "last": value})
                better = value < entry["best"] if _lower_is_better(key) else value > entry["best"]
                if better:
                    entry["best"], entry["best_step"] = value, step
                entry["last"] = value
    if status_iteration is not None and status != "running":
        iterations = max(iterations, status_iteration)
    return RunSummary(
        run_dir=run_dir, name=run_dir.parent.name, started=_started(run_dir.name), status=status, detail=detail,
        iterations=iterations, wall_s=wall, s_per_iter=(sum(times) / len(times)) if times else None,
        metrics=metrics, config=read_config(run_dir / "config.py"),
    )


def read_runs(sources: Sequence[str], required: bool = False) -> list[RunSummary]:
    """Every run under ``sources``; a source that does not exist is an error, and so is finding none when ``required``."""
    missing = [source for source in sources if not Path(source).exists()]
    if missing:
        raise TrainyardError(f"no such directory: {', '.join(missing)}")
    runs = [read_run(run_dir) for run_dir in find_runs(sources)]
    if required and not runs:
        raise TrainyardError(f"no runs (directories with config.py and a log) under {', '.join(sources)}")
    return runs


def _started(name: str) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.strptime(name[:15], "%Y%m%d_%H%M%S"))
    except ValueError:
        return name


def differing_keys(runs: Sequence[RunSummary]) -> None:
    """Fill each run's ``differs`` with the config keys whose values are not the same in all runs."""
    keys = sorted({key for run in runs for key in run.config if not key.startswith(_IGNORED_KEYS)})
    missing = object()
    varying = [k for k in keys if len({repr(run.config.get(k, missing)) for run in runs}) > 1]
    for run in runs:
        run.differs = {k: run.config.get(k) for k in varying}


def filter_runs(runs: Sequence[RunSummary], conditions: Sequence[str]) -> list[RunSummary]:
    """Keep runs matching every ``KEY=VALUE``: ``status``, ``name``, or a config key (``optim_wrapper.optimizer.lr``)."""
    kept = list(runs)
    for condition in conditions:
        key, sep, wanted = condition.partition("=")
        if not sep:
            from trainyard.errors import ConfigError

            raise ConfigError(f"--filter {condition!r} is not KEY=VALUE (status=finished, optim_wrapper.optimizer.lr=0.01)")
        key = key.strip()
        kept = [run for run in kept if _matches(_field(run, key), wanted.strip())]
    return kept


def _field(run: RunSummary, key: str) -> Any:
    if key in ("status", "name", "started", "iterations"):
        return getattr(run, key)
    return run.config.get(key, "")


def _matches(value: Any, wanted: str) -> bool:
    if str(value) == wanted:
        return True
    try:
        return float(value) == float(wanted)
    except (TypeError, ValueError):
        return False


def sort_runs(runs: Sequence[RunSummary], key: str | None) -> list[RunSummary]:
    """By a metric's best value (best first), a column (``iterations``, ``wall_s``, ``started``) or a config key."""
    if not key:
        return list(runs)
    metric = key if "/" in key else next((m for run in runs for m in run.metrics if m.endswith("/" + key)), None)
    if metric is not None:
        sign = 1 if _lower_is_better(metric) else -1
        present = [r for r in runs if metric in r.metrics]
        return sorted(present, key=lambda r: sign * r.metrics[metric]["best"]) + [r for r in runs if metric not in r.metrics]
    if key in ("iterations", "wall_s", "s_per_iter", "started", "status", "name"):
        return sorted(runs, key=lambda r: (getattr(r, key) is None, getattr(r, key) or 0))
    return sorted(runs, key=lambda r: repr(r.config.get(key)))


def main_metrics(runs: Sequence[RunSummary], limit: int = 3) -> list[str]:
    """The summary metrics to show: validation numbers that are not per-class (no '.' in the name)."""
    seen: dict[str, None] = {}
    for run in runs:
        for key in run.metrics:
            if key.startswith(("val/", "test/")) and "." not in key.split("/", 1)[1]:
                seen.setdefault(key, None)
    return list(seen)[:limit]


def format_table(runs: Sequence[RunSummary], metrics: Sequence[str]) -> str:
    """A plain-text table, one run per line."""
    header = ["run", "started", "status", "iters", "wall", "s/iter"] + [f"{m} best (last)" for m in metrics] + ["differs"]
    rows = [header]
    for run in runs:
        status = run.status + (f" ({run.detail.split(':')[0]})" if run.status in ("failed", "interrupted") and run.detail else "")
        row = [f"{run.name}/{run.run_dir.name}", run.started, status, str(run.iterations),
               _duration(run.wall_s), f"{run.s_per_iter:.4f}" if run.s_per_iter is not None else "-"]
        for metric in metrics:
            entry = run.metrics.get(metric)
            row.append(f"{entry['best']:.4f} ({entry['last']:.4f})" if entry else "-")
        row.append(" ".join(f"{k}={v!r}" for k, v in run.differs.items()) or "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(r, widths)) + "  " + r[-1] for r in rows)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, second = divmod(int(round(seconds)), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}"
