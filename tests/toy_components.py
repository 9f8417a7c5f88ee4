"""Tiny components that follow trainyard's contracts, for tests and the tiny configs.

Importing this module registers them (``custom_imports`` in ``tests/configs``).
"""

from __future__ import annotations

import torch
from torch import nn

import os
import signal
from pathlib import Path

from trainyard import DATASETS, HOOKS, LOOPS, METRICS, MODELS
from trainyard.hooks import Hook
from trainyard.loops import IterBasedTrainLoop
from trainyard.evaluation import GatherMetric, SumMetric


@MODELS.register()
class ToyNet(nn.Module):
    """A small conv classifier without batch norm (so split batches give equal gradients)."""

    def __init__(self, num_classes: int = 3, channels: int = 4, dropout: float = 0.0, batch_norm: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(channels) if batch_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, batch: dict, mode: str = "loss"):
        features = torch.relu(self.norm(self.conv(batch["inputs"]))).mean(dim=(2, 3))
        logits = self.head(self.dropout(features))
        if mode == "loss":
            return {"loss_cls": nn.functional.cross_entropy(logits, batch["targets"]), "accuracy": (logits.argmax(1) == batch["targets"]).float().mean()}
        return logits


@DATASETS.register()
class ToyDataset(torch.utils.data.Dataset):
    """Images whose mean colour tells the class, with random noise added at read time."""

    def __init__(self, length: int = 24, size: int = 8, num_classes: int = 3, noise: float = 0.1, nan_indices: tuple = ()) -> None:
        self.length, self.size, self.num_classes, self.noise = length, size, num_classes, noise
        self.nan_indices = set(nan_indices)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        label = index % self.num_classes
        image = torch.full((3, self.size, self.size), label / self.num_classes)
        image = image + self.noise * torch.randn_like(image)
        if index in self.nan_indices:
            image[:] = float("nan")
        return {"inputs": image, "targets": torch.tensor(label), "meta": {"index": index}}


@DATASETS.register()
class ToyAnnotatedDataset(ToyDataset):
    """ToyDataset with what a detection annotation tells without loading an image: its size and classes.

    Every fourth image is portrait (taller than wide); an image's classes are its label.
    """

    def get_data_info(self, index: int) -> dict:
        return {"width": 8, "height": 12 if index % 4 == 0 else 8}

    def get_cat_ids(self, index: int) -> list:
        return [index % self.num_classes]


@METRICS.register()
class ToyAccuracy(SumMetric):
    """Top-1 accuracy from correct and total counts (summed across ranks)."""

    def reset(self) -> None:
        self.state = {"correct": torch.zeros((), dtype=torch.long), "total": torch.zeros((), dtype=torch.long)}

    def process(self, batch, predictions) -> None:
        targets = batch["targets"]
        self.state["correct"] += (predictions.argmax(1) == targets).sum().cpu()
        self.state["total"] += targets.numel()

    def compute(self) -> dict:
        return {"accuracy": self.state["correct"].item() / max(self.state["total"].item(), 1)}


@METRICS.register()
class ToyMeanLoss(SumMetric):
    """Mean cross-entropy over the samples: a continuous score, so any change of weights shows."""

    def reset(self) -> None:
        self.state = {"loss_sum": torch.zeros((), dtype=torch.float64), "count": torch.zeros((), dtype=torch.long)}

    def process(self, batch, predictions) -> None:
        losses = nn.functional.cross_entropy(predictions.double(), batch["targets"], reduction="none")
        self.state["loss_sum"] += losses.sum().cpu()
        self.state["count"] += losses.numel()

    def compute(self) -> dict:
        return {"mean_loss": self.state["loss_sum"].item() / max(self.state["count"].item(), 1)}


@HOOKS.register()
class KillAtIterHook(Hook):
    """SIGKILLs its own process after iteration ``iteration``, once: ``marker`` remembers it happened."""

    priority = "LOWEST"

    def __init__(self, iteration: int, marker: str, rank: int | None = None) -> None:
        self.iteration, self.marker, self.rank = iteration, Path(marker), rank

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.rank is not None and runner.rank != self.rank:
            return
        if runner.iter == self.iteration and not self.marker.exists():
            self.marker.write_text(str(runner.iter))
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register()
class FailingHook(Hook):
    """Raises from inside a hook, as a buggy user hook would (on one rank only if ``rank`` is set)."""

    def __init__(self, rank: int | None = None, iteration: int | None = None) -> None:
        self.rank, self.iteration = rank, iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if (self.rank is None or runner.rank == self.rank) and self.iteration in (None, runner.iter):
            raise_from_user_hook(runner.iter)


def raise_from_user_hook(iteration: int) -> None:
    raise ValueError(f"user hook failed at iteration {iteration}")


@MODELS.register()
class NoLossNet(ToyNet):
    """Breaks the contract: its loss mode returns no key containing 'loss'."""

    def forward(self, batch: dict, mode: str = "loss"):
        result = super().forward(batch, mode)
        return {"accuracy": result["accuracy"]} if mode == "loss" else result


@LOOPS.register()
class HalfStepsLoop(IterBasedTrainLoop):
    """A loop from outside core/: an iteration-based loop that stops halfway and says so."""

    def __init__(self, runner, dataloader, max_iters: int, **kwargs) -> None:
        super().__init__(runner, dataloader, max_iters=max_iters // 2, **kwargs)
        self.announced = f"HalfStepsLoop runs {max_iters // 2} of {max_iters} iterations"

    def run(self) -> None:
        self.runner.logger.info(self.announced)
        super().run()


@METRICS.register()
class ToyGatherAccuracy(GatherMetric):
    """Accuracy from per-sample results gathered from every rank (each sample once)."""

    def process(self, batch, predictions) -> None:
        correct = (predictions.argmax(1) == batch["targets"]).tolist()
        self.results.extend((meta["index"], ok) for meta, ok in zip(batch["meta"], correct))

    def compute(self) -> dict:
        indices = [index for index, _ in self.results]
        assert len(indices) == len(set(indices)), "a sample was counted twice"
        return {"gathered_accuracy": sum(ok for _, ok in self.results) / max(len(self.results), 1), "samples": len(self.results)}


@HOOKS.register()
class KillScheduleHook(Hook):
    """SIGKILLs its process at planned moments, each once, as a crash or a preemption would.

    ``kills`` lists ``[iteration, where]``: ``'iter'`` after that iteration, ``'save'``
    in the middle of writing that iteration's checkpoint, ``'pointer'`` after that
    checkpoint is renamed into place but before ``last_checkpoint`` names it. A file
    per kill in ``marker_dir`` remembers which kills happened.
    """

    priority = "LOWEST"

    def __init__(self, kills: list, marker_dir: str) -> None:
        self.kills = [(int(iteration), where) for iteration, where in kills]
        self.marker_dir = Path(marker_dir)

    def _due(self, iteration: int, where: str) -> bool:
        marker = self.marker_dir / f"killed_{where}_{iteration}"
        if (iteration, where) not in self.kills or marker.exists():
            return False
        self.marker_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(iteration))
        return True

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self._due(runner.iter, "iter"):
            os.kill(os.getpid(), signal.SIGKILL)

    def before_save_checkpoint(self, runner, checkpoint) -> None:
        if self._due(runner.iter, "save"):
            def write_half_then_die(obj, file, *args, **kwargs):
                file.write(b"PK\x03\x04" + bytes(4096))
                file.flush()
                os.kill(os.getpid(), signal.SIGKILL)

            torch.save = write_half_then_die
        elif self._due(runner.iter, "pointer"):
            import trainyard.checkpoint

            def die(*args, **kwargs):
                os.kill(os.getpid(), signal.SIGKILL)

            trainyard.checkpoint._write_last_checkpoint = die


@HOOKS.register()
class StopAtIterHook(Hook):
    """Ends training after iteration ``iteration`` the way early stopping does."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter == self.iteration:
            runner.train_loop.stop_training = True


@HOOKS.register()
class SleepHook(Hook):
    """Makes every iteration last at least ``seconds``, so a signal can land in the middle of a run."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        import time

        time.sleep(self.seconds)


@HOOKS.register()
class StallHook(Hook):
    """One rank stops answering at an iteration, as a rank stuck in I/O or a deadlock would."""

    def __init__(self, rank: int, iteration: int, seconds: float) -> None:
        self.rank, self.iteration, self.seconds = rank, iteration, seconds

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.rank == self.rank and runner.iter == self.iteration:
            import time

            time.sleep(self.seconds)


@HOOKS.register()
class DiskFullHook(Hook):
    """Every checkpoint write of one rank fails with ENOSPC, as on a full disk."""

    def __init__(self, rank: int = 0) -> None:
        self.rank = rank

    def before_run(self, runner) -> None:
        if runner.rank == self.rank:
            import errno

            import trainyard.checkpoint

            def disk_full(path, write):
                raise OSError(errno.ENOSPC, "No space left on device")

            trainyard.checkpoint._atomic_write = disk_full


@HOOKS.register()
class RecordPartialGradsHook(Hook):
    """Writes ``DIR/rank<r>.json``: for each save, whether this rank's checkpoint state held partial gradients."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir, self.seen = Path(out_dir), {}

    def before_save_checkpoint(self, runner, checkpoint) -> None:
        import json

        self.seen[runner.iter] = "partial_grads" in checkpoint.get("optimizer", {})
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"rank{runner.rank}.json").write_text(json.dumps(self.seen))


@DATASETS.register()
class ReadTimeoutDataset(ToyDataset):
    """A dataset whose remote reads time out, as ``requests.ReadTimeout`` would."""

    def __getitem__(self, index: int) -> dict:
        raise TimeoutError("read timeout")


@HOOKS.register()
class FreezeNodeAtIterHook(Hook):
    """After iteration ``iteration``, once, a process of a node started with ``TRAINYARD_TEST_FREEZE=1`` writes
    ``marker`` and hangs, so that the test can kill that whole node (agent and workers) at a known point."""

    priority = "LOWEST"

    def __init__(self, iteration: int, marker: str) -> None:
        self.iteration, self.marker = iteration, Path(marker)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if os.environ.get("TRAINYARD_TEST_FREEZE") == "1" and runner.iter == self.iteration and not self.marker.exists():
            import time

            self.marker.write_text(str(runner.rank))
            time.sleep(600)


@HOOKS.register()
class RecordLaunchHook(Hook):
    """Writes ``DIR/rank<r>-<pid>.json``: what the launcher told this process (local rank, node rank, host)."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def before_train(self, runner) -> None:
        import json
        import socket

        self.out_dir.mkdir(parents=True, exist_ok=True)
        launch = {"rank": runner.rank, "local_rank": os.environ.get("LOCAL_RANK"), "group_rank": os.environ.get("GROUP_RANK"),
                  "host": socket.gethostname(), "restart": os.environ.get("TORCHELASTIC_RESTART_COUNT")}
        (self.out_dir / f"rank{runner.rank}-{os.getpid()}.json").write_text(json.dumps(launch))


@HOOKS.register()
class UnsavedStateHook(Hook):
    """Not resumable on purpose: nudges the model's first parameter by an amount that grows with a count of
    iterations it keeps outside any ``state_dict``, so a resumed run counts from 0 again and ends elsewhere."""

    def __init__(self) -> None:
        self.seen = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.seen += 1
        with torch.no_grad():
            next(runner.unwrapped_model.parameters()).add_(1e-3 * self.seen)


@HOOKS.register()
class RecordLoadedStateHook(Hook):
    """Writes ``DIR/rank<r>.pth`` right after a resume: the whole model and optimizer state this rank loaded,
    and the loop position (under FSDP gathered with ``get_state_dict(full_state_dict=True)``, a collective)."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        options = StateDictOptions(full_state_dict=True)  # on every rank
        model, optimizer = get_state_dict(runner.unwrapped_model, runner.optimizer, options=options)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model, "optimizer": optimizer, "iter": runner.iter}, self.out_dir / f"rank{runner.rank}.pth")
