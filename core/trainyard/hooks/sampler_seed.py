"""Tells the train sampler which epoch starts, so each epoch is shuffled anew."""

from __future__ import annotations

from typing import Any

from trainyard.hooks.hook import Hook


class DistSamplerSeedHook(Hook):
    """Calls ``set_epoch(runner.epoch)`` on the train sampler (and batch sampler) if they have it.

    Without it, a ``DistributedSampler`` would repeat the first epoch's order forever.
    """

    priority = "NORMAL"

    def before_train_epoch(self, runner: Any) -> None:
        loader = runner.train_dataloader
        for sampler in (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(runner.epoch)
