"""ProfilerHook: torch.profiler over a window of training iterations, a trace file and the top operators in the log."""

import pytest
from conftest import tiny_cfg

from trainyard.errors import ConfigError
from trainyard.hooks import Hook
from trainyard.hooks.profiler import ProfilerHook
from trainyard.runner import Runner

_SHORT_RUN = ("train_cfg.max_epochs=1", "val_cfg=None", "val_dataloader=None", "default_hooks.checkpoint=None")


def test_a_window_of_iterations_gives_a_tensorboard_trace_and_a_table_of_operators(tmp_path):
    runner = Runner.from_cfg(tiny_cfg(tmp_path, *_SHORT_RUN, "custom_hooks=[dict(type='ProfilerHook', wait=1, warmup=1, active=2)]"))
    runner.train()
    traces = list((runner.run_dir / "profiler").glob("rank0*.pt.trace.json"))
    assert len(traces) == 1 and "aten::conv2d" in traces[0].read_text()
    log = (runner.run_dir / f"{runner.run_dir.name}.log").read_text()
    assert "profiler: iterations up to 4" in log and "top operators by self_cpu_time_total" in log and "aten::" in log


class _WatchProfiler(Hook):
    priority = "LOWEST"  # after ProfilerHook

    def __init__(self, profiler_hook):
        self.profiler_hook = profiler_hook
        self.running = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.running.append(self.profiler_hook._profiler is not None)


def test_the_profiler_stops_after_its_window(tmp_path):
    hook = ProfilerHook(wait=0, warmup=1, active=1)
    watch = _WatchProfiler(hook)
    runner = Runner.from_cfg(tiny_cfg(tmp_path, *_SHORT_RUN))
    runner.register_hook(hook)
    runner.register_hook(watch)
    runner.train()
    assert watch.running == [True, False, False, False, False, False]  # stopped once its two iterations were done


@pytest.mark.parametrize("options", [dict(active=0), dict(wait=-1), dict(repeat=-2)])
def test_a_window_that_cannot_be_is_refused(options):
    with pytest.raises(ConfigError, match="ProfilerHook needs"):
        ProfilerHook(**options)
