"""Grid sweeps: one training run per combination of config values, each in its own work dir.

A combination whose work dir already holds a finished run is skipped; one that was
interrupted is resumed from its last checkpoint. So running the same sweep again
continues it. Runs start one after the other on this machine, or all at once as
SLURM jobs (``srun``, as ``tools/slurm_train.sh`` starts them).
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainyard.config import parse_overrides
from trainyard.errors import ConfigError
from trainyard.experiments.runs import find_runs, read_run

__all__ = ["Combination", "parse_grid", "plan", "run_sweep"]


@dataclass
class Combination:
    """One point of the grid: its values, its work dir and what the sweep does with it."""

    values: dict[str, Any]
    work_dir: Path
    action: str = "train"
    """``train``, ``resume`` or ``skip`` (a finished run is there)."""

    @property
    def name(self) -> str:
        return self.work_dir.name

    def overrides(self) -> list[str]:
        return [f"{key}={value!r}" for key, value in self.values.items()]


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``['optim_wrapper.optimizer.lr=[0.01,0.1]', ...]`` -> ``{key: [values]}``."""
    grid: dict[str, list[Any]] = {}
    for key, values in parse_overrides(items).items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"--grid {key}= needs a non-empty list of values, like {key}=[0.01,0.1]; got {values!r}")
        grid[key] = list(values)
    if not grid:
        raise ConfigError("a sweep needs at least one --grid KEY=[VALUES]")
    return grid


def _directory_name(values: dict[str, Any]) -> str:
    """``lr=0.01_batch_size=8``: the last part of each key, filesystem-safe."""
    parts = [f"{key.rsplit('.', 1)[-1]}={value}" for key, value in values.items()]
    return re.sub(r"[^A-Za-z0-9=._+-]", "-", "_".join(parts))


def plan(grid: dict[str, list[Any]], root: Path) -> list[Combination]:
    """Every combination, with what to do about the run its work dir may already hold."""
    combinations = []
    for picked in itertools.product(*grid.values()):
        values = dict(zip(grid, picked))
        combination = Combination(values, root / _directory_name(values))
        runs = [read_run(run_dir) for run_dir in find_runs([combination.work_dir])] if combination.work_dir.is_dir() else []
        if any(run.status == "finished" for run in runs):
            combination.action = "skip"
        elif any(combination.work_dir.glob("*.pth")):
            combination.action = "resume"
        combinations.append(combination)
    return combinations


def train_command(config: str, combination: Combination, extra_options: Sequence[str], launcher: str) -> list[str]:
    command = [sys.executable, "-u", "-m", "trainyard", "train", config, "--work-dir", str(combination.work_dir)]
    if combination.action == "resume":
        command.append("--resume")
    if launcher == "slurm":
        command += ["--launcher", "slurm"]
    return command + ["--cfg-options", *extra_options, *combination.overrides()]


def srun_prefix(partition: str, job_name: str) -> list[str]:
    """``srun`` as ``tools/slurm_launch.sh`` calls it; GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS from the environment."""
    gpus_per_node = os.environ.get("GPUS_PER_NODE", "8")
    return ["srun", "-p", partition, f"--job-name={job_name}", f"--gres=gpu:{gpus_per_node}", f"--ntasks={os.environ.get('GPUS', '8')}",
            f"--ntasks-per-node={gpus_per_node}", f"--cpus-per-task={os.environ.get('CPUS_PER_TASK', '5')}", "--kill-on-bad-exit=1",
            *shlex.split(os.environ.get("SRUN_ARGS", ""))]


def run_sweep(config: str, combinations: Sequence[Combination], extra_options: Sequence[str] = (), launcher: str = "none",
              partition: str | None = None, echo: Any = print) -> dict[str, int]:
    """Train every combination that is not finished; returns ``{name: exit status}`` of those started.

    Each run's console output goes to ``<work_dir>/sweep_console.log``.
    """
    if launcher == "slurm" and not partition:
        raise ConfigError("--launcher slurm needs --partition")
    statuses: dict[str, int] = {}
    started: list[tuple[Combination, subprocess.Popen, Any]] = []
    todo = [c for c in combinations if c.action != "skip"]
    for combination in combinations:
        if combination.action == "skip":
            echo(f"skip   {combination.name}: finished earlier")
    for number, combination in enumerate(todo, 1):
        combination.work_dir.mkdir(parents=True, exist_ok=True)
        command = train_command(config, combination, extra_options, launcher)
        if launcher == "slurm":
            command = [*srun_prefix(partition or "", f"sweep-{combination.name}"), *command]
        console = open(combination.work_dir / "sweep_console.log", "a", encoding="utf-8")
        echo(f"{combination.action:<6} {combination.name} ({number}/{len(todo)}): {shlex.join(command) if launcher == 'slurm' else 'trainyard ' + shlex.join(command[4:])}")
        process = subprocess.Popen(command, stdout=console, stderr=subprocess.STDOUT)
        if launcher == "slurm":
            started.append((combination, process, console))  # jobs run side by side on the cluster
            continue
        statuses[combination.name] = process.wait()
        console.close()
        echo(f"       {combination.name}: {'finished' if statuses[combination.name] == 0 else f'exit status {statuses[combination.name]}'}")
    for combination, process, console in started:
        statuses[combination.name] = process.wait()
        console.close()
        echo(f"       {combination.name}: {'finished' if statuses[combination.name] == 0 else f'exit status {statuses[combination.name]}'}")
    return statuses
