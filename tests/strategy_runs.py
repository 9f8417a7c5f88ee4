"""Several trainings in one torchrun launch, so that DDP and FSDP runs share one start-up (tests/core/test_strategies.py).

    torchrun --nproc_per_node 2 tests/strategy_runs.py CASES.json OUT.json

``CASES.json`` lists ``dict(name=..., config=..., options=[...])``, trained one after the
other with ``--cfg-options``-style options. Rank 0 saves each run's final full weights as
``NAME.pth`` and every rank's buffers as ``NAME.buffers.pth`` (``before_val``: as the last
validation began, ``end``: after training; each a list by rank) beside
``OUT.json``, and writes there, per run, its strategy, last validation metrics and
whether its parameters are DTensors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from trainyard import dist
from trainyard.config import load_config
from trainyard.hooks import Hook
from trainyard.runner import Runner


def every_ranks_buffers(runner: Runner) -> list[dict[str, torch.Tensor]] | None:
    """Each rank's buffers, by rank, on rank 0 (a collective)."""
    return dist.gather_objects({name: b.detach().clone() for name, b in runner.unwrapped_model.named_buffers()})


class KeepMetrics(Hook):
    """The last validation metrics, as the val loop reported them, and every rank's buffers as validation began."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.buffers_before_val: list[dict[str, torch.Tensor]] | None = None

    def before_val_epoch(self, runner: Any) -> None:
        self.buffers_before_val = every_ranks_buffers(runner)

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        self.metrics = {key: float(value) for key, value in (metrics or {}).items() if isinstance(value, (int, float))}


def main(cases_path: str, out_path: str) -> None:
    out = Path(out_path)
    results = {}
    for case in json.loads(Path(cases_path).read_text()):
        cfg = load_config(case["config"], case["options"])
        cfg.work_dir = str(out.parent / case["name"])
        cfg.launcher = "pytorch"
        runner = Runner.from_cfg(cfg)
        kept = KeepMetrics()
        runner.register_hook(kept)
        runner.train()
        weights = runner.strategy.model_state_dict()
        buffers = every_ranks_buffers(runner)
        if dist.get_rank() == 0:
            torch.save(weights, out.parent / f"{case['name']}.pth")
            torch.save({"before_val": kept.buffers_before_val, "end": buffers}, out.parent / f"{case['name']}.buffers.pth")
        from torch.distributed.tensor import DTensor

        results[case["name"]] = {
            "strategy": runner.strategy.name,
            "metrics": kept.metrics,
            "sharded": all(isinstance(p, DTensor) for p in runner.unwrapped_model.parameters()),
        }
    if dist.get_rank() == 0:
        out.write_text(json.dumps(results, indent=1))
    dist.destroy(synchronize=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
