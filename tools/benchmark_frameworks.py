"""One training job four ways: a plain PyTorch loop, trainyard's Runner, MMEngine's Runner, Lightning's Trainer.

Used by ``tools/benchmark.py --mode fixed`` (a linear layer on batch 1: what each
framework adds per iteration) and ``--mode epochs`` (a small CNN over several epochs:
the steady state including epoch boundaries and per-sample work). Every side trains
the same model class on the same in-memory tensors with SGD and a shuffled
``DataLoader`` without workers, and reads :data:`clock` at the same point
(the end of each iteration, or of each epoch). The frameworks keep their usual hooks:
a log line every 50 iterations, an LR schedule, a checkpoint at the end of each epoch
(and of the run). MMEngine and Lightning are optional: a side whose package is missing
is reported as such and left out.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn


clock: Callable[[], float] = time.perf_counter
"""What every side's timestamps read: wall time, or ``time.process_time`` (``--clock cpu``), the CPU time of this
process alone, which other processes on a shared machine disturb far less."""


@dataclass
class Job:
    """What every side trains: ``network()`` on ``(inputs, targets)`` in batches, for ``iters`` or ``epochs``."""

    network: Callable[[], nn.Module]
    inputs: torch.Tensor
    targets: torch.Tensor
    batch_size: int
    iters: int | None = None
    """Iteration-based run with a timestamp per iteration (``--mode fixed``)."""
    epochs: int | None = None
    """Epoch-based run with a timestamp per epoch (``--mode epochs``)."""
    log_interval: int = 50
    trainyard_without: tuple[str, ...] = ()
    """``default_hooks`` the trainyard side leaves out (``--without-hooks``): what each costs."""


class TensorPairs(torch.utils.data.Dataset):
    """``{'inputs', 'targets'}`` dicts from two in-memory tensors (what a dataset returns under the model contract)."""

    is_random = False
    """Reading a sample draws no random numbers: trainyard skips per-sample seeding (see trainyard.pipeline_randomness)."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"inputs": self.inputs[index], "targets": self.targets[index]}


def linear_network(features: int = 16, classes: int = 4) -> Callable[[], nn.Module]:
    """A linear layer: nearly no compute, so what remains of an iteration is the framework."""
    return lambda: nn.Linear(features, classes)


def small_cnn_network(channels: int = 32, classes: int = 10) -> Callable[[], nn.Module]:
    """Three 3x3 convolutions, global pooling and a linear head (``BenchNet``'s layers)."""

    def build() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes),
        )

    return build


# plain ----------------------------------------------------------------------------


def run_plain(job: Job, work_dir: Path) -> list[float]:
    """The loop a user writes by hand (no logging, no checkpoint)."""
    torch.manual_seed(0)
    model = job.network()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = torch.utils.data.DataLoader(TensorPairs(job.inputs, job.targets), batch_size=job.batch_size, shuffle=True, drop_last=True)
    stamps: list[float] = []
    model.train()
    done = 0
    for _ in range(job.epochs or 10**9):
        for batch in loader:
            loss = nn.functional.cross_entropy(model(batch["inputs"]), batch["targets"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if job.iters is not None:
                stamps.append(clock())
                if done == job.iters:
                    return stamps
        if job.epochs is not None:
            stamps.append(clock())
    return stamps


# trainyard ------------------------------------------------------------------------


class TrainyardModel(nn.Module):
    """The job's network under trainyard's model contract."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, batch: dict, mode: str = "loss") -> Any:
        logits = self.network(batch["inputs"])
        if mode == "loss":
            return {"loss": nn.functional.cross_entropy(logits, batch["targets"])}
        return logits


def run_trainyard(job: Job, work_dir: Path) -> list[float]:
    """The Runner with ``configs/_base_/default_runtime.py``'s hooks (logger, schedule, checkpoint, seeding, NaN guard)."""
    from mmengine.config import Config

    from trainyard.hooks import Hook
    from trainyard.runner import Runner

    stamps: list[float] = []
    point = "after_train_iter" if job.iters is not None else "after_train_epoch"

    class Stamp(Hook):
        priority = "LOWEST"

    setattr(Stamp, point, lambda self, runner, *args, **kwargs: stamps.append(clock()))
    torch.manual_seed(0)
    cfg = Config.fromfile(str(Path(__file__).resolve().parents[1] / "configs/_base_/default_runtime.py"))
    train_cfg = (dict(type="IterBasedTrainLoop", max_iters=job.iters, val_interval=10**9) if job.iters is not None
                 else dict(type="EpochBasedTrainLoop", max_epochs=job.epochs, val_interval=10**9))
    cfg.merge_from_dict(dict(
        model=dict(type=TrainyardModel, network=job.network()),
        train_dataloader=dict(batch_size=job.batch_size, drop_last=True, dataset=TensorPairs(job.inputs, job.targets)),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01, momentum=0.9)),
        param_scheduler=[dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=50)],
        train_cfg=train_cfg, randomness=dict(seed=0), work_dir=str(work_dir),
    ))
    cfg.default_hooks.logger.interval = job.log_interval
    for name in job.trainyard_without:
        cfg.default_hooks[name] = None
    cfg.custom_hooks = [Stamp()]
    with contextlib.redirect_stdout(io.StringIO()):
        Runner.from_cfg(cfg).train()
    return stamps


# MMEngine -------------------------------------------------------------------------


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def mmengine_available() -> bool:
    return _importable("mmengine.runner")


def run_mmengine(job: Job, work_dir: Path) -> list[float]:
    """MMEngine's Runner with its default hooks (runtime info, timer, logger, schedule, checkpoint, sampler seed)."""
    from mmengine.hooks import Hook as MMHook
    from mmengine.model import BaseModel
    from mmengine.runner import Runner as MMRunner

    stamps: list[float] = []

    class Model(BaseModel):
        def __init__(self, network: nn.Module) -> None:
            super().__init__()
            self.network = network

        def forward(self, inputs: torch.Tensor, targets: torch.Tensor | None = None, mode: str = "tensor") -> Any:
            logits = self.network(inputs)
            if mode == "loss":
                return {"loss": nn.functional.cross_entropy(logits, targets)}
            return logits

    class Stamp(MMHook):
        priority = "LOWEST"

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            if job.iters is not None:
                stamps.append(clock())

        def after_train_epoch(self, runner) -> None:
            if job.epochs is not None:
                stamps.append(clock())

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(TensorPairs(job.inputs, job.targets), batch_size=job.batch_size, shuffle=True, drop_last=True)
    by_epoch = job.epochs is not None
    train_cfg = dict(by_epoch=True, max_epochs=job.epochs, val_interval=10**9) if by_epoch else dict(by_epoch=False, max_iters=job.iters, val_interval=10**9)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = MMRunner(
            model=Model(job.network()), work_dir=str(work_dir), train_dataloader=loader, train_cfg=train_cfg,
            optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01, momentum=0.9)),
            param_scheduler=[dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=50)],
            default_hooks=dict(logger=dict(type="LoggerHook", interval=job.log_interval),
                               checkpoint=dict(type="CheckpointHook", interval=1 if by_epoch else job.iters, by_epoch=by_epoch, max_keep_ckpts=3)),
            custom_hooks=[Stamp()], randomness=dict(seed=0), log_level="WARNING",
            experiment_name=f"bench_{time.time_ns()}",
        )
        runner.train()
    _quiet_mmengine()
    return stamps


def _quiet_mmengine() -> None:
    """MMEngine's logger keeps file handlers per run; close them so rounds do not pile them up."""
    from mmengine.logging import MMLogger

    for name in list(MMLogger._instance_dict):
        instance = MMLogger._instance_dict.pop(name)
        for handler in list(instance.handlers):
            instance.removeHandler(handler)
            handler.close()


# Lightning ------------------------------------------------------------------------


def lightning_available() -> bool:
    return _importable("lightning.pytorch")


def run_lightning(job: Job, work_dir: Path) -> list[float]:
    """Lightning's Trainer: CSV logger every 50 steps, ``self.log`` of the loss, checkpoint per epoch, no progress bar."""
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    stamps: list[float] = []

    class Module(pl.LightningModule):
        def __init__(self, network: nn.Module) -> None:
            super().__init__()
            self.network = network

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            loss = nn.functional.cross_entropy(self.network(batch["inputs"]), batch["targets"])
            self.log("loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            optimizer = torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)
            schedule = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=50)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    class Stamp(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if job.iters is not None:
                stamps.append(clock())

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            if job.epochs is not None:
                stamps.append(clock())

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(TensorPairs(job.inputs, job.targets), batch_size=job.batch_size, shuffle=True, drop_last=True)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(
            accelerator="cpu", devices=1, max_steps=job.iters if job.iters is not None else -1,
            max_epochs=job.epochs if job.epochs is not None else None,
            logger=CSVLogger(str(work_dir)), log_every_n_steps=job.log_interval, enable_progress_bar=False,
            enable_model_summary=False, enable_checkpointing=True, default_root_dir=str(work_dir),
            callbacks=[Stamp()], num_sanity_val_steps=0,
        )
        trainer.fit(Module(job.network()), train_dataloaders=loader)
    return stamps


SIDES: dict[str, Callable[[Job, Path], list[float]]] = {
    "plain": run_plain, "trainyard": run_trainyard, "mmengine": run_mmengine, "lightning": run_lightning,
}


def available_sides() -> tuple[list[str], list[str]]:
    """The sides this environment can run, and notes on the ones it cannot."""
    sides, notes = ["plain", "trainyard"], []
    for name, available, package in (("mmengine", mmengine_available, "mmengine"), ("lightning", lightning_available, "'trainyard[benchmark]'")):
        if available():
            sides.append(name)
        else:
            notes.append(f"{name}: not installed (pip install {package}), left out")
    return sides, notes
