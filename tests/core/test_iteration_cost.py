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


def test_a_schedule_leaves_the_per_iteration_point_once_it_has_settled(tmp_path, monkeypatch):
    from trainyard.hooks.param_scheduler import ParamSchedulerHook

    called_at = []
    real = ParamSchedulerHook.before_train_iter
    monkeypatch.setattr(ParamSchedulerHook, "before_train_iter",
                        lambda self, runner, *a, **k: called_at.append(runner.iter) or real(self, runner, *a, **k))
    settling = tiny_cfg(tmp_path, "train_cfg.max_epochs=3", "default_hooks.checkpoint=None",
                        "param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4)]")
    Runner.from_cfg(settling).train()
    assert called_at == [0, 1, 2, 3, 4, 5]  # 18 iterations: the window ends at 4, the call at 5 finds nothing to do

    called_at.clear()
    epoch_wise = tiny_cfg(tmp_path / "epochs", "train_cfg.max_epochs=2", "default_hooks.checkpoint=None",
                          "param_scheduler=[dict(type='MultiStepLR', milestones=[1], by_epoch=True)]")
    runner = Runner.from_cfg(epoch_wise)
    runner.train()
    assert called_at == [] and runner.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)  # 0.1 x gamma after epoch 1


def test_the_train_loop_calls_the_per_iteration_points_without_runner_call_hook(tmp_path, monkeypatch):
    """``Runner.call_hook`` packs its keywords into a dict that each hook unpacks again: 1.7 us an iteration for four hooks."""
    points = []
    real = Runner.call_hook
    monkeypatch.setattr(Runner, "call_hook", lambda self, point, **kwargs: points.append(point) or real(self, point, **kwargs))
    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1", "default_hooks.checkpoint=None"))
    runner.train()
    assert "before_train_epoch" in points and "after_train_epoch" in points
    assert not {"before_train_iter", "after_train_iter"} & set(points)


def test_log_buffer_means_of_several_loss_terms_and_numbers():
    buffer = LogBuffer()
    for step in range(4):
        buffer.update_dict({"loss": torch.tensor(float(step)), "loss_cls": torch.tensor(2.0 * step, dtype=torch.bfloat16)})
        buffer.update("time", 0.5)
    buffer.update("extra", torch.ones(1))
    assert buffer.pop_means() == {"loss": 1.5, "loss_cls": 3.0, "time": 0.5, "extra": 1.0}
    assert buffer.pop_means() == {}


def test_nan_guard_checks_the_losses_at_the_interval_not_every_iteration(tmp_path, monkeypatch):
    from trainyard.hooks import nan_guard

    checks = []
    real = nan_guard.scalars_to_host
    monkeypatch.setattr(nan_guard, "scalars_to_host", lambda tensors: checks.append(len(tensors)) or real(tensors))
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


def test_a_scheduler_hook_subclass_that_implements_the_iteration_point_is_still_called_there(tmp_path):
    """Leaving ``before_train_iter`` is for the shipped hook's own work; a subclass's (even without ``super().__init__``) runs."""
    from trainyard.hooks.param_scheduler import ParamSchedulerHook

    called_at = []

    class EveryIteration(ParamSchedulerHook):
        def __init__(self) -> None:
            self.note = "no super().__init__()"

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            super().before_train_iter(runner, batch_idx, data_batch)
            called_at.append(runner.iter)

    cfg = tiny_cfg(tmp_path, "train_cfg.max_epochs=2", "default_hooks.checkpoint=None", "default_hooks.param_scheduler=None",
                   "param_scheduler=[dict(type='MultiStepLR', milestones=[1], by_epoch=True)]")
    runner = Runner.from_cfg(cfg)
    runner.register_hook(EveryIteration())
    runner.train()
    assert called_at == list(range(12))


def test_the_logger_still_gives_an_eta_when_a_subclass_replaces_its_before_train(tmp_path):
    from trainyard.hooks.logger import LoggerHook

    class Quiet(LoggerHook):
        def before_train(self, runner):
            pass

    cfg = tiny_cfg(tmp_path, "train_cfg.max_epochs=2", "default_hooks.checkpoint=None", "default_hooks.logger=None")
    runner = Runner.from_cfg(cfg)
    runner.register_hook(Quiet(interval=3))
    runner.train()
    lines = [line for line in (runner.run_dir / f"{runner.run_dir.name}.log").read_text().splitlines() if "Epoch(train)" in line]
    assert lines and all("eta: " in line for line in lines[1:])  # the first line comes before any iteration was timed


def test_one_element_tensors_only_are_read_as_numbers_on_every_device():
    from trainyard.transfer import scalars_to_host

    assert scalars_to_host([torch.tensor(1.5), torch.tensor([2.5]), torch.tensor(3.0, dtype=torch.bfloat16)]) == [1.5, 2.5, 3.0]
    with pytest.raises(RuntimeError):  # the CPU path: .item() of a vector
        scalars_to_host([torch.ones(2), torch.ones(2)])
    with pytest.raises(ValueError, match="one-element tensors"):  # a device's path (meta stands in for a GPU here)
        scalars_to_host([torch.ones(2, device="meta"), torch.ones(2, device="meta")])


def test_the_last_graph_is_kept_one_iteration_as_in_a_hand_written_loop_and_let_go_when_training_ends(tmp_path):
    """What a custom autograd Function keeps on ``ctx`` lives as long as with ``loss`` in a plain loop, not longer."""
    import weakref

    kept_on_ctx = []

    class Scale(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.extra = torch.ones(4)
            kept_on_ctx.append(weakref.ref(ctx.extra))
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            return grad

    alive_after_step = []

    class CountAlive(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            alive_after_step.append(sum(ref() is not None for ref in kept_on_ctx))

    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1", "default_hooks.checkpoint=None"))
    model = runner.unwrapped_model
    original_forward = model.forward
    model.forward = lambda batch, mode="tensor": {k: Scale.apply(v) if k.startswith("loss") else v
                                                  for k, v in original_forward(batch, mode).items()} if mode == "loss" else original_forward(batch, mode)
    runner.register_hook(CountAlive())
    runner.train()
    assert alive_after_step == [1] * 6  # this iteration's graph only: the previous one went when its successor was built
    assert all(ref() is None for ref in kept_on_ctx)
