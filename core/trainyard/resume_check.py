"""Does a config resume exactly? Train N iterations; again, killed at K and resumed; compare everything.

trainyard promises that a run killed at any iteration and resumed ends bit for bit
where an uninterrupted run ends (on the CPU). That holds for the shipped components;
a user's own model, dataset, hook or strategy can break it (state kept outside
``state_dict``, randomness drawn from process history). :func:`verify_resume` checks
it on the user's own config, with real processes and a real ``SIGKILL``, and
:func:`compare_states` names the first tensor or value that differs.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainyard.errors import ConfigError, TrainyardError
from trainyard.hooks.hook import Hook

__all__ = ["Difference", "ResumeReport", "VerifyResumeHook", "compare_states", "verify_resume"]

COMPARED_FIRST = ("state_dict", "optimizer", "scaler", "schedulers", "hooks", "loop", "rng")
"""Checkpoint parts in the order they are compared; any other part follows. ``meta`` is compared by ``META_COMPARED`` only."""
META_COMPARED = ("epoch", "iter", "seed", "world_size")


class VerifyResumeHook(Hook):
    """Ends training after iteration ``stop_at``; with ``kill_at``, SIGKILLs every process after that iteration.

    Its priority is the lowest, so the checkpoint of iteration ``kill_at`` is on disk
    (every rank learns the outcome of a save) before the kill: the kill is a crash
    right after a save, the case a resume must get exactly right.
    """

    priority = "LOWEST"

    def __init__(self, stop_at: int, kill_at: int | None = None) -> None:
        self.stop_at, self.kill_at = stop_at, kill_at

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if runner.iter == self.kill_at:
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        if runner.iter >= self.stop_at:
            runner.train_loop.stop_training = True


@dataclass(frozen=True)
class Difference:
    """One entry of the resumed run's checkpoint that is not the uninterrupted run's."""

    name: str
    """The full name in the checkpoint, such as ``optimizer.state.state.3.momentum_buffer``."""
    detail: str

    def __str__(self) -> str:
        return f"{self.name} differs: {self.detail}"


def compare_states(expected: Any, actual: Any, name: str = "") -> Iterator[Difference]:
    """Every difference between two checkpoints (or parts of them), in order; tensors must be equal bit for bit."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        for key in expected:
            child = f"{name}.{key}" if name else str(key)
            if key not in actual:
                yield Difference(child, "missing in the resumed run")
            else:
                yield from compare_states(expected[key], actual[key], child)
        for key in actual:
            if key not in expected:
                yield Difference(f"{name}.{key}" if name else str(key), "only in the resumed run")
    elif isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        if len(expected) != len(actual):
            yield Difference(name, f"{len(expected)} entries, resumed {len(actual)}")
        for index, (one, other) in enumerate(zip(expected, actual)):
            yield from compare_states(one, other, f"{name}.{index}")
    elif isinstance(expected, torch.Tensor) and isinstance(actual, torch.Tensor):
        detail = _tensor_difference(expected, actual)
        if detail:
            yield Difference(name, detail)
    elif type(expected) is not type(actual) and not (_is_number(expected) and _is_number(actual)):
        yield Difference(name, f"{type(expected).__name__} {_short(expected)}, resumed {type(actual).__name__} {_short(actual)}")
    elif not _same_value(expected, actual):
        yield Difference(name, f"{_short(expected)}, resumed {_short(actual)}")


def _tensor_difference(expected: torch.Tensor, actual: torch.Tensor) -> str | None:
    if expected.shape != actual.shape or expected.dtype != actual.dtype:
        return f"{expected.dtype} {tuple(expected.shape)}, resumed {actual.dtype} {tuple(actual.shape)}"
    expected, actual = expected.detach().cpu(), actual.detach().cpu()
    if expected.is_floating_point() or expected.is_complex():
        same_nan = torch.equal(expected.isnan(), actual.isnan())
        if same_nan and torch.equal(expected.nan_to_num(0.0), actual.nan_to_num(0.0)):
            return None
        if not same_nan:
            return "NaN in different places"
        return f"max abs diff {(expected.double() - actual.double()).abs().max().item():.3g}"
    if torch.equal(expected, actual):
        return None
    return f"{int((expected != actual).sum())} of {expected.numel()} elements differ"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same_value(expected: Any, actual: Any) -> bool:
    if isinstance(expected, float) and isinstance(actual, float) and math.isnan(expected) and math.isnan(actual):
        return True
    return expected == actual


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def checkpoint_differences(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[Difference]:
    """Differences of two whole checkpoints: the training state in :data:`COMPARED_FIRST` order, then the rest."""
    differences = [
        Difference(f"meta.{key}", f"{_short(expected['meta'].get(key))}, resumed {_short(actual['meta'].get(key))}")
        for key in META_COMPARED if expected.get("meta", {}).get(key) != actual.get("meta", {}).get(key)
    ]
    order = [key for key in COMPARED_FIRST if key in expected or key in actual]
    order += [key for key in [*expected, *actual] if key not in order and key != "meta"]
    for key in dict.fromkeys(order):
        if key not in actual:
            differences.append(Difference(key, "missing in the resumed run"))
        elif key not in expected:
            differences.append(Difference(key, "only in the resumed run"))
        else:
            differences.extend(compare_states(expected[key], actual[key], key))
    return differences


def count_entries(state: Any) -> int:
    """Tensors and plain values in a (nested) state."""
    if isinstance(state, Mapping):
        return sum(count_entries(value) for value in state.values())
    if isinstance(state, (list, tuple)):
        return sum(count_entries(value) for value in state)
    return 1


@dataclass
class ResumeReport:
    """What :func:`verify_resume` found."""

    uninterrupted: Path
    resumed: Path
    iteration: int
    compared: int
    differences: list[Difference] = field(default_factory=list)
    weights_only: bool = False
    """The checkpoints were DCP directories: consolidated here, their model weights alone were compared."""

    @property
    def passed(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        if self.passed:
            return (f"PASS: {self.compared} tensors and values of {self.resumed.name} at iteration {self.iteration} "
                    f"are identical in the uninterrupted run ({self.uninterrupted}) and the resumed one ({self.resumed})"
                    + (" (DCP checkpoints: model weights only, not the optimizer or other training state)" if self.weights_only else ""))
        others = len(self.differences) - 1
        more = f" (and {others} more entr{'y' if others == 1 else 'ies'})" if others else ""
        return f"FAIL: {self.differences[0]}{more}; compared {self.uninterrupted} with {self.resumed}"


@dataclass
class _Runs:
    """How to start ``trainyard train`` for the three runs of a check."""

    config: str
    iters: int
    kill_at: int
    launcher: str
    nproc: int
    cfg_options: list[str]
    seed: int | None

    def command(self, work_dir: Path, kill_at: int | None, resume: bool) -> list[str]:
        hook = f"dict(type='VerifyResumeHook', stop_at={self.iters}, kill_at={kill_at})"
        options = [*self.cfg_options, f"default_hooks.verify_resume={hook}", f"default_hooks.checkpoint.interval={self.kill_at}",
                   "default_hooks.checkpoint.by_epoch=False", "default_hooks.checkpoint.save_last=True"]
        train = ["train", self.config, "--work-dir", str(work_dir), "--resume" if resume else "--overwrite"]
        if self.seed is not None:
            train += ["--seed", str(self.seed)]
        if self.launcher == "pytorch":
            start = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={self.nproc}", "-m", "trainyard"]
            train += ["--launcher", "pytorch"]
        else:
            start = [sys.executable, "-m", "trainyard"]
            train += ["--launcher", "none"]
        return [*start, *train, "--cfg-options", *options]


def _run(command: list[str], log: Path, what: str, echo: Any) -> int:
    echo(f"{what} (log: {log})")
    with log.open("w") as output:
        return subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode


def _log_tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def saved_iteration(work_dir: Path, iteration: int) -> Path | None:
    """The checkpoint saved after ``iteration``: ``iter_K.pth``, or the sharded ``iter_K.dcp`` directory (FSDP, DCP)."""
    from trainyard.checkpoint_dcp import SUFFIX, is_dcp_directory

    file, directory = work_dir / f"iter_{iteration}.pth", work_dir / f"iter_{iteration}{SUFFIX}"
    if file.is_file():
        return file
    return directory if is_dcp_directory(directory) else None


def _final_checkpoint(work_dir: Path, log: Path) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint of a run; a DCP directory consolidated (``meta`` and the model weights only)."""
    from trainyard.checkpoint import newest_intact_checkpoint, read_full_checkpoint

    path = newest_intact_checkpoint(work_dir)
    if path is None:
        raise TrainyardError(f"the run in {work_dir} wrote no checkpoint; see {log}")
    return path, read_full_checkpoint(path)


def verify_resume(config: str, iters: int = 8, kill_at: int | None = None, launcher: str = "none", nproc: int = 2,
                  cfg_options: Sequence[str] = (), work_dir: str | os.PathLike[str] | None = None,
                  echo: Any = print) -> ResumeReport:
    """Train ``config`` for ``iters`` iterations; again, SIGKILLed after iteration ``kill_at`` (default: half way) and
    resumed with ``--resume``; compare the two final checkpoints entry by entry.

    Each run is ``trainyard train`` in its own processes (``nproc`` under torchrun with
    ``launcher='pytorch'``), with a checkpoint every ``kill_at`` iterations. A config
    without a seed gets one drawn here, the same for both runs. ``echo`` receives
    one line per run.
    """
    from trainyard.config import load_config
    from trainyard.config_scopes import config_file, config_stem

    config_file(config)
    kill_at = iters // 2 if kill_at is None else kill_at
    if not 0 < kill_at < iters:
        raise ConfigError(f"--kill-at must be between 1 and --iters - 1 ({iters - 1}), got {kill_at}")
    if launcher not in ("none", "pytorch"):
        raise ConfigError(f"--launcher must be 'none' or 'pytorch', got {launcher!r}")
    cfg = load_config(config, list(cfg_options))
    seed = None if (cfg.get("randomness") or {}).get("seed") is not None else random.randrange(2**31)
    root = Path(work_dir) if work_dir else Path("work_dirs") / f"{config_stem(config)}_verify_resume"
    uninterrupted, resumed = root / "uninterrupted", root / "resumed"
    for folder in (uninterrupted, resumed):
        folder.mkdir(parents=True, exist_ok=True)
    runs = _Runs(str(config), iters, kill_at, launcher, nproc, list(cfg_options), seed)

    log = root / "uninterrupted.log"
    if _run(runs.command(uninterrupted, None, resume=False), log, f"1/3 uninterrupted run, {iters} iterations", echo):
        raise TrainyardError(f"the uninterrupted run failed; see {log}:\n{_log_tail(log)}")
    log = root / "killed.log"
    if _run(runs.command(resumed, kill_at, resume=False), log, f"2/3 the same run, killed (SIGKILL) after iteration {kill_at}", echo) == 0:
        raise TrainyardError(f"the run to be killed ended before iteration {kill_at} (the config's schedule is shorter); "
                             f"choose a smaller --kill-at and --iters. See {log}")
    if saved_iteration(resumed, kill_at) is None:
        raise TrainyardError(f"the killed run failed before it saved iteration {kill_at}; see {log}:\n{_log_tail(log)}")
    log = root / "resumed.log"
    if _run(runs.command(resumed, None, resume=True), log, f"3/3 resumed from iteration {kill_at} with --resume", echo):
        raise TrainyardError(f"the resumed run failed; see {log}:\n{_log_tail(log)}")

    expected_path, expected = _final_checkpoint(uninterrupted, root / "uninterrupted.log")
    actual_path, actual = _final_checkpoint(resumed, log)
    differences = checkpoint_differences(expected, actual)
    compared = sum(count_entries(expected[key]) for key in expected if key != "meta")
    weights_only = expected_path.is_dir() or actual_path.is_dir()
    return ResumeReport(expected_path, actual_path, int(expected.get("meta", {}).get("iter", -1)), compared, differences, weights_only)
