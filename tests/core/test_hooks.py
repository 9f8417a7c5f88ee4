"""Hook dispatch as hook authors rely on it: order, priorities, overrides, errors."""

import pytest
from conftest import run_trainyard, tiny_cfg

from trainyard import HOOKS
from trainyard.hooks import HOOK_POINTS, Hook, HookDispatcher
from trainyard.runner import Runner


@HOOKS.register()
class RecordingHook(Hook):
    """Records every hook point it sees, with the runner's position."""

    def __init__(self, log: list | None = None) -> None:
        self.log = log if log is not None else []


def _recorder(point):
    def record(self, runner, **kwargs):
        self.log.append(point)

    record.__name__ = point
    return record


for _point in HOOK_POINTS:
    setattr(RecordingHook, _point, _recorder(_point))


def test_every_hook_point_in_order_across_train_val_and_test(tmp_path):
    # 8 train samples / batch 4 = 2 iterations per epoch; 4 val and test samples / batch 2 = 2 iterations
    cfg = tiny_cfg(
        tmp_path,
        "train_cfg.max_epochs=2",
        "train_dataloader.dataset.length=8",
        "val_dataloader.dataset.length=4",
        "val_dataloader.batch_size=2",
        "test_dataloader.dataset.length=4",
        "test_dataloader.batch_size=2",
        "default_hooks.checkpoint=None",
    )
    runner = Runner.from_cfg(cfg)
    recorder = RecordingHook()
    runner.register_hook(recorder)
    runner.train()
    runner.test()

    def evaluation(split):
        return [f"before_{split}", f"before_{split}_epoch", *[f"{w}_{split}_iter" for _ in range(2) for w in ("before", "after")], f"after_{split}_epoch", f"after_{split}"]

    epoch = ["before_train_epoch", *["before_train_iter", "after_train_iter"] * 2, "after_train_epoch", *evaluation("val")]
    expected = ["before_run", "before_train", *epoch, *epoch, "after_train", "after_run", "before_run", *evaluation("test"), "after_run"]
    assert recorder.log == expected


def _hook(priority, name, log):
    class Named(Hook):
        def before_train(self, runner):
            log.append(name)

    hook = Named()
    hook.priority = priority
    return hook


def test_priorities_order_hooks_and_ties_keep_registration_order():
    log = []
    dispatcher = HookDispatcher()
    for priority, name in [("LOW", "low"), (10, "ten"), ("NORMAL", "normal-1"), ("LOWEST", "lowest"), (50, "normal-2"), ("HIGHEST", "highest")]:
        dispatcher.add(_hook(priority, name, log))
    dispatcher.call("before_train", runner=None)
    assert log == ["highest", "ten", "normal-1", "normal-2", "low", "lowest"]


def test_unknown_priority_name_is_rejected():
    with pytest.raises(ValueError, match="unknown hook priority 'MEDIUM'"):
        HookDispatcher().add(_hook("MEDIUM", "x", []))


def test_hook_is_called_only_at_the_points_it_overrides(tmp_path, monkeypatch):
    called = []

    class OnlyAfterIter(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            called.append("after_train_iter")

    def spy(point):
        def method(self, *args, **kwargs):
            if isinstance(self, OnlyAfterIter):
                called.append(point)

        return method

    for point in HOOK_POINTS:
        if point != "after_train_iter":
            monkeypatch.setattr(Hook, point, spy(point))
    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1", "default_hooks.checkpoint=None"))
    runner.register_hook(OnlyAfterIter())
    runner.train()
    assert called == ["after_train_iter"] * 6


def test_custom_hooks_from_config_are_built_with_their_priority(tmp_path):
    cfg = tiny_cfg(tmp_path, "train_cfg.max_epochs=1", custom_hooks=[dict(type="RecordingHook", priority="VERY_HIGH")])
    runner = Runner.from_cfg(cfg)
    names = [type(h).__name__ for h in runner.hooks]
    assert names[0] == "RecordingHook"
    assert names.index("CheckpointHook") == len(names) - 1
    runner.train()
    assert runner.hooks[0].log[:2] == ["before_run", "before_train"]


def test_exception_in_a_hook_keeps_its_traceback(tmp_path):
    runner = Runner.from_cfg(tiny_cfg(tmp_path, custom_hooks=[dict(type="FailingHook")]))
    with pytest.raises(ValueError, match="user hook failed at iteration 1") as info:
        runner.train()
    assert info.traceback[-1].name == "raise_from_user_hook"
    assert any(entry.name == "after_train_iter" for entry in info.traceback)


def test_exception_in_a_hook_shows_its_traceback_on_the_command_line(tmp_path):
    result = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(tmp_path),
                           "--cfg-options", "custom_hooks=[dict(type='FailingHook')]")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "in raise_from_user_hook" in result.stderr
    assert "ValueError: user hook failed at iteration 1" in result.stderr


def test_time_in_hooks_is_reported_at_the_end(tmp_path):
    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1"))
    runner.train()
    log_text = (runner.run_dir / f"{runner.run_dir.name}.log").read_text()
    assert "training finished: total" in log_text and "s in hooks (" in log_text


def test_per_iteration_points_pass_their_arguments_by_keyword(tmp_path):
    """The train loop's own fast path still calls hooks as ``**kwargs`` hooks expect, with the positions of the run."""
    seen = []

    class Keywords(Hook):
        def before_train_iter(self, runner, **kwargs):
            seen.append(("before", runner.iter, sorted(kwargs), kwargs["batch_idx"]))

        def after_train_iter(self, runner, **kwargs):
            seen.append(("after", runner.iter, sorted(kwargs), kwargs["outputs"]["loss"].ndim))

    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1", "default_hooks.checkpoint=None"))
    runner.register_hook(Keywords())
    runner.train()
    iterations = len(seen) // 2
    assert iterations == runner.iter > 1
    assert seen[:2] == [("before", 0, ["batch_idx", "data_batch"], 0), ("after", 1, ["batch_idx", "data_batch", "outputs"], 0)]
    assert [batch_idx for point, _, _, batch_idx in seen if point == "before"] == list(range(iterations))
