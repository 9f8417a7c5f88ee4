"""Grid sweeps: one training run per combination of config values, each in its own work dir.

A combination whose work dir already holds a finished run is skipped; one that was
interrupted is resumed from its last checkpoint. So running the same sweep again
continues it. Runs start one after the other on this machine, or all at once as
SLURM jobs (``srun``, as ``tools/slurm_train.sh`` starts them).
"""

from __future__ import annotations

import difflib
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

__all__ = ["Combination", "check_plan", "outcome", "parse_grid", "plan", "run_sweep"]


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
        if isinstance(values, str):
            values = _bare_list(key, values)
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"--grid {key}= needs a non-empty list of values, like {key}=[0.01,0.1]; got {values!r}")
        grid[key] = list(values)
    if not grid:
        raise ConfigError("a sweep needs at least one --grid KEY=[VALUES]")
    return grid


def _bare_list(key: str, text: str) -> list[Any] | str:
    """``[SGD,AdamW]``: a flat list of unquoted words, read item by item as MMEngine's DictAction does."""
    inner = text.strip()[1:-1]
    if not (text.strip().startswith("[") and text.strip().endswith("]")) or any(c in inner for c in "[](){}'\""):
        return text
    return [parse_overrides([f"{key}={part.strip()}"])[key] for part in inner.split(",") if part.strip()]


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


def check_plan(config: str, grid: dict[str, list[Any]], combinations: Sequence[Combination], extra_options: Sequence[str] = ()) -> None:
    """Raise :class:`ConfigError` before any run starts if one combination's config is wrong.

    Without this, a misspelt grid key launches every run just to watch each fail. Every
    grid key must name a value the config (with ``extra_options``) sets, so a typo is
    caught with a suggestion; text is refused where the config holds a number, and a
    plain value where it holds a component dict. Then each combination's config is
    loaded and validated as ``trainyard train`` would (its ``type`` names looked up).
    """
    from trainyard.config import load_config, validate_config

    base = load_config(config, list(extra_options)).to_dict()
    for key, values in grid.items():
        current = _value_at(base, key)
        for value in values:
            _check_value_kind(key, value, current)
    _check_distinct_work_dirs(combinations)
    for combination in combinations:
        try:
            validate_config(load_config(config, [*extra_options, *combination.overrides()]), mode="train")
        except ConfigError as exc:
            raise ConfigError(f"sweep combination {combination.name}: {exc}") from None


def _value_at(cfg: Any, key: str) -> Any:
    """The config's value at dotted ``key``; a part it lacks is an error naming the part, with a suggestion."""
    node, walked = cfg, []
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ConfigError(f"--grid {key}: " + _missing_part_message(".".join(walked), part, node))
        walked.append(part)
    return node


def _missing_part_message(parent: str, part: str, node: Any) -> str:
    where = f"'{parent}'" if parent else "the config"
    if not isinstance(node, (dict, list, tuple)):
        return f"{where} is {node!r}, which has no '{part}'"
    if isinstance(node, (list, tuple)):
        return f"{where} is a list of {len(node)}; '{part}' is not an index of it"
    keys = [str(k) for k in node if not str(k).startswith("_")]
    close = difflib.get_close_matches(part, keys, n=1, cutoff=0.6)
    full = f"{parent}.{part}" if parent else part
    hint = (f"did you mean '{parent + '.' if parent else ''}{close[0]}'?" if close else
            f"it holds {', '.join(sorted(keys)[:12])}; to sweep a value the config leaves to its default, "
            f"set it first with --cfg-options {full}=VALUE")
    return f"the config has no '{full}'; {hint}"


def _check_value_kind(key: str, value: Any, current: Any) -> None:
    """Text where the config holds a number, or a plain value in place of a component dict, is a mistake."""
    if isinstance(current, (int, float)) and isinstance(value, str):
        expected = "true or false" if isinstance(current, bool) else "a number"
        raise ConfigError(f"--grid {key}: {value!r} is text, but the config's value is {current!r}; it takes {expected}, "
                          f"written without quotes")
    if isinstance(current, dict) and value is not None and not isinstance(value, dict):
        inner = [str(k) for k in current if not str(k).startswith("_")]
        example = next((k for k in inner if k != "type"), "KEY")
        raise ConfigError(f"--grid {key}: {value!r} would replace the dict at {key} ({', '.join(inner)}); "
                          f"did you mean a key inside it, like {key}.{example}?")


def _check_distinct_work_dirs(combinations: Sequence[Combination]) -> None:
    """Two combinations must not share a work dir (a value listed twice, or names equal once made filesystem-safe)."""
    seen: dict[Path, Combination] = {}
    for combination in combinations:
        other = seen.setdefault(combination.work_dir, combination)
        if other is not combination:
            raise ConfigError(f"--grid values {other.values} and {combination.values} would share the run directory "
                              f"{combination.work_dir}; list each value once")


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


def outcome(combination: Combination, exit_status: int) -> str:
    """``'finished'``, or why the run did not finish.

    Exit status 0 is not proof enough: a launcher that ran nothing (a misconfigured
    ``srun``, a wrapper script) also exits 0. A run counts as finished only when its
    work dir holds a run whose log ends with ``run status: finished``.
    """
    if exit_status != 0:
        return f"exit status {exit_status}"
    if not any(read_run(run_dir).status == "finished" for run_dir in find_runs([combination.work_dir])):
        return f"exit status 0, but {combination.work_dir} holds no finished run (nothing was trained there)"
    return "finished"


def run_sweep(config: str, combinations: Sequence[Combination], extra_options: Sequence[str] = (), launcher: str = "none",
              partition: str | None = None, echo: Any = print) -> dict[str, str]:
    """Train every combination that is not finished; returns ``{name: outcome}`` (see :func:`outcome`) of those started.

    Each run's console output goes to ``<work_dir>/sweep_console.log``.
    """
    if launcher == "slurm" and not partition:
        raise ConfigError("--launcher slurm needs --partition")
    outcomes: dict[str, str] = {}
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
        outcomes[combination.name] = _wait_for(combination, process, console, echo)
    for combination, process, console in started:
        outcomes[combination.name] = _wait_for(combination, process, console, echo)
    return outcomes


def _wait_for(combination: Combination, process: subprocess.Popen, console: Any, echo: Any) -> str:
    exit_status = process.wait()
    console.close()
    result = outcome(combination, exit_status)
    echo(f"       {combination.name}: {result}")
    return result
