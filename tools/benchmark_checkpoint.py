"""How long training waits per checkpoint save: one file (rank 0), DCP directory, DCP in the background.

    torchrun --nproc_per_node 2 tools/benchmark_checkpoint.py --params 25e6 --saves 3 --out-dir /tmp/ckpt_bench

Each rank holds a replicated MLP of ``--params`` parameters with AdamW state (3x the
weights), as under DDP. Per format it saves ``--saves`` times, one training step apart,
and prints (rank 0) the median time ``save`` blocked the caller, and for the background
save also the time until the checkpoint was complete on disk.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from trainyard import dist
from trainyard.checkpointer import Checkpointer
from trainyard.hooks import HookDispatcher
from trainyard.optim import OptimWrapper
from trainyard.training_state import TrainingState


class _Position:
    """The train loop's place in this benchmark (one iteration between saves)."""

    def __init__(self) -> None:
        self.iter, self.epoch = 0, 0

    def state_dict(self) -> dict[str, int]:
        return {"iter": self.iter}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.iter = state["iter"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=float, default=25e6, help="model parameters (default 25e6)")
    parser.add_argument("--saves", type=int, default=3)
    parser.add_argument("--out-dir", default=None, help="where to write (default: a temporary folder)")
    args = parser.parse_args()
    dist.init_distributed(dist.detect_launcher(), "gloo")
    torch.manual_seed(0)
    width = int((args.params / 4) ** 0.5)
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(4)])
    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-4), torch.device("cpu"))
    position = _Position()

    def step() -> None:
        wrapper.update_params(model(torch.randn(8, width)).square().mean())
        position.iter += 1

    step()
    root = Path(args.out_dir or tempfile.mkdtemp(prefix="trainyard_ckpt_bench_"))
    state = TrainingState(model, wrapper, [], position, HookDispatcher(),
                          lambda: {"iter": position.iter, "epoch": 0, "world_size": dist.get_world_size()},
                          dist.get_rank(), dist.get_world_size())
    parameters = sum(p.numel() for p in model.parameters())
    lines = [f"{parameters / 1e6:.1f} M parameters + AdamW state ({parameters * 12 / 2**30:.2f} GiB), "
             f"{dist.get_world_size()} gloo processes, {torch.get_num_threads()} threads each"]
    for label, save_format, async_save in (("one file, rank 0", "file", False), ("DCP directory", "dcp", False),
                                           ("DCP directory, async_save", "dcp", True)):
        work_dir = root / save_format / str(async_save)
        if dist.get_rank() == 0:
            work_dir.mkdir(parents=True, exist_ok=True)
        dist.barrier()
        checkpointer = Checkpointer(state, work_dir, lambda *a, **k: None)
        blocked, complete = [], []
        for _ in range(args.saves):
            step()
            dist.barrier()
            started = time.perf_counter()
            checkpointer.save(f"iter_{position.iter}.pth", save_format, async_save)
            blocked.append(time.perf_counter() - started)
            checkpointer.wait()
            complete.append(time.perf_counter() - started)
        lines.append(f"{label:28s} training blocked {statistics.median(blocked):6.2f} s per save; "
                     f"complete on disk after {statistics.median(complete):6.2f} s")
    if dist.get_rank() == 0:
        print("\n".join(lines))
    dist.destroy(synchronize=True)


if __name__ == "__main__":
    main()
