"""The model's size in the log at the start of training: parameters and multiply-adds for one training sample."""

from __future__ import annotations

from typing import Any

from trainyard.hooks.hook import Hook


class ModelSummaryHook(Hook):
    """Before training, on rank 0, log the model's parameters (total, trainable, per module) and MACs.

    Multiply-adds are counted by ``torch.utils.flop_counter`` on one ``mode='predict'``
    pass over the first training sample after the pipeline and the data preprocessor,
    so at the size the model trains at. It runs once, on the unwrapped model, with
    the random generators left as they were (a resumed run draws what an
    uninterrupted one does). A default hook (``default_hooks.model_summary``); switch
    it off with ``default_hooks.model_summary=None``, or keep the parameter counts
    only with ``count_macs=False`` (the one forward pass of a large detector on the
    CPU takes seconds).

    Args:
        count_macs: also count multiply-adds on one sample.
        depth: how deep the per-module rows go (1: the model's children).
    """

    priority = "LOW"

    def __init__(self, count_macs: bool = True, depth: int = 1) -> None:
        self.count_macs = count_macs
        self.depth = depth

    def before_train(self, runner: Any) -> None:
        collective = getattr(getattr(runner, "strategy", None), "shards_parameters", False)  # FSDP: a forward needs every rank
        if runner.rank != 0 and not (collective and self.count_macs):
            return
        from trainyard.model_summary import preserved_rng, read_sample_batch, summarize_model

        with preserved_rng(runner.device):
            batch = None
            if self.count_macs:
                loader = runner.train_dataloader
                batch = runner.preprocess(read_sample_batch(loader.dataset, loader.collate_fn))
            summary = summarize_model(runner.unwrapped_model, batch, self.depth)
        for line in summary.lines():
            runner.logger.info(line)
