"""Images per second of the seg job on 1 and on N processes of this machine (gloo, one thread each).

Used by ``tools/benchmark.py --mode scaling``. Each run is ``torchrun --nproc-per-node
N tools/train.py configs/seg/unet.py`` with validation, checkpoints and pictures
switched off, ``OMP_NUM_THREADS=1``, and the logger writing every ``interval``
iterations; the per-iteration ``time`` of ``scalars.jsonl`` (the iteration timer's
mean over each logging interval, the first interval left out) gives images/s =
processes x batch size / seconds per iteration.

``--independent`` also runs N single-process jobs side by side, without any
communication between them: the images/s they reach together is what this machine's
cores, caches and memory allow N processes, the ceiling for the distributed run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = "configs/seg/unet.py"


def _options(work_dir: Path, iters: int, interval: int, extra: list[str]) -> list[str]:
    return [
        "--work-dir", str(work_dir), "--cfg-options", f"train_cfg.max_iters={iters}", f"train_cfg.val_interval={10 * iters}",
        f"default_hooks.logger.interval={interval}", f"default_hooks.checkpoint.interval={10 * iters}",
        "default_hooks.checkpoint.save_best=None", "custom_hooks=[]", *extra,
    ]


def _seconds_per_iteration(work_dir: Path) -> list[float]:
    """Every rank-0 run's mean iteration time after its first logging interval."""
    means = []
    for scalars in sorted(work_dir.rglob("scalars.jsonl")):
        times = [r["train/time"] for r in map(json.loads, scalars.read_text().splitlines()) if "train/time" in r]
        if len(times) > 1:
            means.append(statistics.fmean(times[1:]))
    return means


def run(processes: int, iters: int, interval: int, extra: list[str], independent: bool = False) -> float:
    """Images per second of one run: N ranks of one job, or (``independent``) N separate one-process jobs."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for job in range(processes if independent else 1):
            ranks = 1 if independent else processes
            command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={ranks}", "--master-port", str(29600 + job),
                       str(REPO / "tools/train.py"), CONFIG, "--launcher", "pytorch",
                       *_options(Path(tmp) / f"job{job}", iters, interval, extra)]
            jobs.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        for process in jobs:
            _, error = process.communicate()
            if process.returncode:
                raise SystemExit(f"the seg job failed ({process.returncode}):\n{error[-2000:]}")
        seconds = _seconds_per_iteration(Path(tmp))
    batch_size = 8  # configs/_base_/datasets/shapes.py
    per_job = 1 if independent else processes
    return sum(per_job * batch_size / s for s in seconds)
