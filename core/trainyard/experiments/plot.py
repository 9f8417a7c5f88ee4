"""Curves of several runs in one PNG, read from their ``scalars.jsonl`` (matplotlib, headless)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from trainyard.errors import ConfigError
from trainyard.experiments.runs import RunSummary

__all__ = ["read_curves", "plot_curves", "smooth"]


def read_curves(run_dir: Path, keys: Sequence[str], x_axis: str = "iter") -> dict[str, tuple[list[float], list[float]]]:
    """``{key: (xs, ys)}`` for each wanted scalar. A key matches ``train/<key>``, ``val/<key>`` or itself.

    ``x_axis='epoch'`` puts points at ``train/epoch`` (validation points at the epoch
    of the step they were logged at).
    """
    curves: dict[str, tuple[list[float], list[float]]] = {}
    epoch_of_step: dict[int, float] = {}
    path = run_dir / "scalars.jsonl"
    records = []
    for line in path.read_text(errors="replace").splitlines() if path.is_file() else []:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    for record in records:
        if "train/epoch" in record:
            epoch_of_step[int(record["step"])] = float(record["train/epoch"])
    for record in records:
        step = int(record.get("step", 0))
        for key in keys:
            name = next((k for k in (key, f"train/{key}", f"val/{key}") if isinstance(record.get(k), (int, float))), None)
            if name is None:
                continue
            x = epoch_of_step.get(step, step) if x_axis == "epoch" else step
            xs, ys = curves.setdefault(name, ([], []))
            xs.append(float(x))
            ys.append(float(record[name]))
    return curves


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's exponential moving average with debiasing (``weight`` 0: none, 0.9: strong)."""
    if not 0 <= weight < 1:
        raise ConfigError(f"--smooth must be in [0, 1), got {weight}")
    smoothed, average = [], 0.0
    for count, value in enumerate(values, 1):
        average = weight * average + (1 - weight) * value
        smoothed.append(average / (1 - weight**count) if weight else value)
    return smoothed


def run_label(run: RunSummary) -> str:
    """A run named by the config values that set it apart, else by its directory."""
    if run.differs:
        return ", ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in list(run.differs.items())[:3])
    return f"{run.name}/{run.run_dir.name}"


def plot_curves(runs: Sequence[RunSummary], keys: Sequence[str], out: Path, x_axis: str = "iter", smoothing: float = 0.0) -> dict[str, dict[str, int]]:
    """One panel per key, one line per run; returns ``{panel title: {run label: points}}`` of what was drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [run_label(run) for run in runs]
    labels = [f"{label} ({run.run_dir.name})" if labels.count(label) > 1 else label for label, run in zip(labels, runs)]
    panels: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for run, label in zip(runs, labels):
        for name, (xs, ys) in read_curves(run.run_dir, keys, x_axis).items():
            panels.setdefault(name, {})[label] = (xs, smooth(ys, smoothing) if name.startswith("train/") else ys)
    if not panels:
        raise ConfigError(f"none of the runs logged {', '.join(keys)}; the keys in scalars.jsonl look like train/loss, val/mIoU")
    figure = Figure(figsize=(6.4 * len(panels), 4.4), dpi=100)
    FigureCanvasAgg(figure)  # headless: no display, no global backend switch
    drawn: dict[str, dict[str, int]] = {}
    for index, (name, lines) in enumerate(sorted(panels.items()), 1):
        axes = figure.add_subplot(1, len(panels), index)
        for label, (xs, ys) in lines.items():
            axes.plot(xs, ys, label=label, marker="o" if len(xs) < 12 else None)
        axes.set_title(name + (f" (smoothed {smoothing})" if smoothing and name.startswith("train/") else ""))
        axes.set_xlabel(x_axis)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
        drawn[name] = {label: len(xs) for label, (xs, _) in lines.items()}
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    return drawn
