"""Profile a window of training iterations with ``torch.profiler``: a TensorBoard trace and the top operators in the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainyard.errors import ConfigError
from trainyard.hooks.hook import Hook


class ProfilerHook(Hook):
    """``torch.profiler`` over training iterations ``wait`` .. ``wait + warmup + active`` (``repeat`` times).

    The schedule is ``torch.profiler.schedule(wait, warmup, active, repeat)``, counted
    from the first iteration this run trains (a resumed run profiles after its
    resume point). At the end of each active window the trace is written by
    ``torch.profiler.tensorboard_trace_handler`` to ``<run_dir>/profiler/`` (open it
    with TensorBoard's profiler plugin, Perfetto or ``chrome://tracing``) and the
    ``row_limit`` most expensive operators are logged as a table. Iterations outside
    the window cost one comparison; CUDA activity is recorded when training on CUDA.

    Args:
        wait: iterations skipped before the window.
        warmup: iterations profiled but discarded (the profiler's own start-up).
        active: iterations recorded.
        repeat: windows (0: until training ends).
        row_limit: operators in the logged table.
        sort_by: the table's order, a ``key_averages().table`` key; default: self device time on CUDA (``self_device_time_total``), else self CPU time.
        record_shapes, profile_memory, with_stack: as ``torch.profiler.profile``.
        all_ranks: profile every rank (each its own trace file) instead of rank 0 only.
    """

    priority = "VERY_LOW"

    def __init__(self, wait: int = 1, warmup: int = 1, active: int = 3, repeat: int = 1, row_limit: int = 15,
                 sort_by: str | None = None, record_shapes: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, all_ranks: bool = False) -> None:
        if wait < 0 or warmup < 0 or active < 1 or repeat < 0:
            raise ConfigError(f"ProfilerHook needs wait >= 0, warmup >= 0, active >= 1 and repeat >= 0; got "
                              f"wait={wait}, warmup={warmup}, active={active}, repeat={repeat}")
        self.wait, self.warmup, self.active, self.repeat = wait, warmup, active, repeat
        self.row_limit = row_limit
        self.sort_by = sort_by
        self.options = {"record_shapes": record_shapes, "profile_memory": profile_memory, "with_stack": with_stack}
        self.all_ranks = all_ranks
        self.trace_dir: Path | None = None
        self._profiler: Any = None
        self._steps_left = 0

    def before_train(self, runner: Any) -> None:
        if runner.rank != 0 and not self.all_ranks:
            return
        from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

        on_cuda = runner.device.type == "cuda"
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
        self.sort_by = self.sort_by or ("self_device_time_total" if on_cuda else "self_cpu_time_total")
        self.trace_dir = Path(runner.run_dir) / "profiler"
        write_trace = tensorboard_trace_handler(str(self.trace_dir), worker_name=f"rank{runner.rank}")

        def trace_ready(profiler: Any) -> None:
            write_trace(profiler)
            table = profiler.key_averages().table(sort_by=self.sort_by, row_limit=self.row_limit)
            runner.logger.info(f"profiler: iterations up to {runner.iter}, trace in {self.trace_dir}; top operators by "
                               f"{self.sort_by}:\n{table}")

        cycle = self.wait + self.warmup + self.active
        self._steps_left = cycle * self.repeat if self.repeat else runner.max_iters
        self._profiler = profile(activities=activities, on_trace_ready=trace_ready,
                                 schedule=schedule(wait=self.wait, warmup=self.warmup, active=self.active, repeat=self.repeat),
                                 **self.options)
        self._profiler.start()

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if self._profiler is None:
            return
        self._profiler.step()
        self._steps_left -= 1
        if self._steps_left <= 0:
            self._stop()

    def after_train(self, runner: Any) -> None:
        self._stop()

    def after_run(self, runner: Any) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._profiler is not None:
            profiler, self._profiler = self._profiler, None
            profiler.stop()
