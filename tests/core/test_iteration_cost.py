"""What keeps the Runner's per-iteration cost low: work done only when it can change something, or at the interval."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_cfg
from trainyard.hooks import Hook
from trainyard.logging import LogBuffer
from trainyard.runner import Runner


def test_schedules_are_not_recomputed_once_every_window_has_ended(tmp_path, monkeypatch):
    import trainyard.hooks.param_scheduler as hook_module

    applied_at = []
    real = hook_module.apply_schedules

    def spy(schedulers, epoch, iteration, iters_per_epoch):
        applied_at.append(iteration)
        real(schedulers, epoch, iteration, iters_per_epoch)

    monkeypatch.setattr(hook_module, "apply_schedules", spy)
    lrs = []

    class RecordLr(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            lrs.append(runner.optimizer.param_groups[0]["lr"])

    runner = Runner.from_cfg(tiny_cfg(
        tmp_path, "train_cfg.max_epochs=3", "default_hooks.checkpoint=None",
        "param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4)]",
    ))
    runner.register_hook(RecordLr())
    runner.train()
    per_iteration = [i for i in applied_at if i not in (0, 6, 12)]  # epoch starts always apply
    assert max(per_iteration) == 4 and len(lrs) == 18
    assert lrs[:4] == pytest.approx([0.01, 0.0325, 0.055, 0.0775]) and lrs[4:] == pytest.approx([0.1] * 14)


def test_open_ended_schedules_are_applied_every_iteration(tmp_path, monkeypatch):
    import trainyard.hooks.param_scheduler as hook_module

    applied_at = []
    monkeypatch.setattr(hook_module, "apply_schedules", lambda s, epoch, iteration, n: applied_at.append(iteration))
    Runner.from_cfg(tiny_cfg(
        tmp_path, "train_cfg.max_epochs=1", "default_hooks.checkpoint=None",
        "param_scheduler=[dict(type='ExponentialLR', gamma=0.9, by_epoch=False)]",
    )).train()
    assert applied_at == [0, 0, 1, 2, 3, 4, 5]


def test_log_buffer_means_of_several_loss_terms_and_numbers():
    buffer = LogBuffer()
    for step in range(4):
        buffer.update_dict({"loss": torch.tensor(float(step)), "loss_cls": torch.tensor(2.0 * step, dtype=torch.bfloat16)})
        buffer.update("time", 0.5)
    buffer.update("extra", torch.ones(1))
    assert buffer.pop_means() == {"loss": 1.5, "loss_cls": 3.0, "time": 0.5, "extra": 1.0}
    assert buffer.pop_means() == {}


def test_nan_guard_checks_the_losses_at_the_interval_not_every_iteration(tmp_path, monkeypatch):
    checks = []
    real = torch.isfinite
    monkeypatch.setattr(torch, "isfinite", lambda tensor: checks.append(tensor.numel()) or real(tensor))
    Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=2", "default_hooks.checkpoint=None",
                             "default_hooks.nan_guard.interval=4")).train()
    assert checks == [4, 4, 4]  # 12 iterations: one check of 4 losses every 4 iterations, none in between


def test_hooks_with_nothing_to_do_per_iteration_are_not_called_there(tmp_path, monkeypatch):
    """A progress bar without a terminal and an epoch-wise synchronous checkpoint hook leave the per-iteration points."""
    from trainyard.hooks.checkpoint import CheckpointHook
    from trainyard.hooks.progress_bar import ProgressBarHook

    calls = []
    for cls in (CheckpointHook, ProgressBarHook):
        real = cls.after_train_iter
        monkeypatch.setattr(cls, "after_train_iter", lambda self, *a, _real=real, **k: calls.append(type(self).__name__) or _real(self, *a, **k))
    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1"))  # stdout is not a terminal under pytest
    runner.train()
    assert calls == []
    assert (runner.work_dir / "epoch_1.pth").is_file()  # it still saves at the end of the epoch

    iteration_wise = Runner.from_cfg(tiny_cfg(tmp_path / "iters", "train_cfg.max_epochs=1",
                                              "default_hooks.checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False)"))
    iteration_wise.train()
    assert calls.count("CheckpointHook") == 6 and "ProgressBarHook" not in calls
    assert sorted(p.name for p in iteration_wise.work_dir.glob("iter_*.pth")) == ["iter_3.pth", "iter_6.pth"]


def test_a_subclass_that_implements_the_point_itself_is_still_called(tmp_path):
    from trainyard.hooks.checkpoint import CheckpointHook

    class SaveAtIterationThree(CheckpointHook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter == 3:
                self._save(runner, "iter_3.pth")

    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1", "default_hooks.checkpoint=None"))
    runner.register_hook(SaveAtIterationThree(interval=1, by_epoch=True))
    runner.train()
    assert (runner.work_dir / "iter_3.pth").is_file() and (runner.work_dir / "epoch_1.pth").is_file()


def test_a_progress_bar_on_a_terminal_is_called_every_iteration(tmp_path, monkeypatch):
    import sys

    from trainyard.hooks.progress_bar import ProgressBarHook

    drawn = []
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    real = ProgressBarHook.after_train_iter
    monkeypatch.setattr(ProgressBarHook, "after_train_iter", lambda self, *a, **k: drawn.append(self._bar is not None) or real(self, *a, **k))
    Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1", "default_hooks.checkpoint=None")).train()
    assert drawn == [True] * 6
