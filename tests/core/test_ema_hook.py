"""EMAHook: what it averages, when, and which weights evaluation and exports see."""

import json

import torch
from conftest import run_trainyard, tiny_cfg

from trainyard.checkpoint import read_checkpoint
from trainyard.hooks import Hook
from trainyard.runner import Runner


class WeightsAtEachStep(Hook):
    """Records the model's state after every optimizer step (accumulation micro-steps excluded)."""

    priority = "HIGHEST"

    def __init__(self):
        self.states = []

    def before_train(self, runner):
        self.states.append({k: v.clone() for k, v in runner.unwrapped_model.state_dict().items()})

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter % 2 == 0:
            self.states.append({k: v.clone() for k, v in runner.unwrapped_model.state_dict().items()})


def test_averages_parameters_once_per_optimizer_step_and_copies_buffers(tmp_path):
    momentum = 0.25
    cfg = tiny_cfg(
        tmp_path, "model.batch_norm=True", "optim_wrapper.accumulative_counts=2", "val_dataloader=None", "val_cfg=None",
        "val_evaluator=None", "default_hooks.checkpoint=dict(type='CheckpointHook', interval=-1, by_epoch=False)",
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=6), custom_hooks=[dict(type="EMAHook", momentum=momentum)],
    )
    runner = Runner.from_cfg(cfg)
    recorder = WeightsAtEachStep()
    runner.register_hook(recorder)
    runner.train()
    expected = dict(recorder.states[0])
    for state in recorder.states[1:]:
        for key, value in state.items():
            if key.endswith(("weight", "bias")):
                expected[key] = (1 - momentum) * expected[key] + momentum * value
            else:
                expected[key] = value
    saved = read_checkpoint(tmp_path / "iter_6.pth")
    for key, value in saved["state_dict"].items():
        torch.testing.assert_close(value, expected[key], rtol=1e-6, atol=1e-7, msg=key)
    assert torch.equal(saved["state_dict"]["norm.running_var"], recorder.states[-1]["norm.running_var"])
    for key, value in saved["hooks"]["EMAHook"]["training_weights"].items():
        assert torch.equal(value, recorder.states[-1][key]), key


def test_test_command_reproduces_the_validation_score_that_picked_the_best_checkpoint(tmp_path):
    options = [
        "model.batch_norm=True", "model.dropout=0.2",
        "val_evaluator=dict(type='ToyMeanLoss')", "test_evaluator=dict(type='ToyMeanLoss')",
        "default_hooks.checkpoint.save_best='mean_loss'", "custom_hooks=[dict(type='EMAHook', momentum=0.05)]",
    ]
    trained = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(tmp_path), "--cfg-options", *options)
    assert trained.returncode == 0, trained.stderr
    (best,) = tmp_path.glob("best_mean_loss_*.pth")
    picked_by = read_checkpoint(best)["hooks"]["CheckpointHook"]["best_score"]
    tested = run_trainyard("test", "tests/configs/tiny.py", str(best), "--work-dir", str(tmp_path), "--out", str(tmp_path / "test.json"),
                           "--cfg-options", *options)
    assert tested.returncode == 0, tested.stderr
    assert json.loads((tmp_path / "test.json").read_text())["mean_loss"] == picked_by


def trained_checkpoints(work_dir, ema_priority=None):
    """Every checkpoint of one epoch of the tiny config with EMA: two periodic ones and the best."""
    ema = dict(type="EMAHook", momentum=0.2) | ({"priority": ema_priority} if ema_priority else {})
    cfg = tiny_cfg(
        work_dir, "train_cfg.max_epochs=1",
        "default_hooks.checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False, save_best='accuracy')",
        custom_hooks=[ema],
    )
    Runner.from_cfg(cfg).train()
    return {path.name: read_checkpoint(path) for path in sorted(work_dir.glob("*.pth"))}


def test_checkpoints_hold_the_same_average_whatever_the_ema_hook_priority(tmp_path):
    default = trained_checkpoints(tmp_path / "default")
    last = trained_checkpoints(tmp_path / "lowest", ema_priority="LOWEST")  # after the checkpoint hook
    assert default.keys() == last.keys() == {"iter_3.pth", "iter_6.pth", "best_accuracy_iter_6.pth"}
    for name in default:
        for part in ("state_dict", "training_weights"):
            expected = default[name]["state_dict"] if part == "state_dict" else default[name]["hooks"]["EMAHook"][part]
            saved = last[name]["state_dict"] if part == "state_dict" else last[name]["hooks"]["EMAHook"][part]
            for key, value in expected.items():
                assert torch.equal(saved[key], value), (name, part, key)


class Fp16OverflowAt(Hook):
    """GradScaler (as ``dtype='float16'`` on CUDA uses; it runs on the CPU too) and, at one iteration, the
    infinite gradients of an fp16 overflow, which make the scaler skip that step; records the weights after each."""

    priority = "HIGHEST"

    def __init__(self, iteration):
        self.iteration = iteration
        self.states = []
        self._handle = None

    def before_train(self, runner):
        runner.optim_wrapper.scaler = torch.amp.GradScaler("cpu")

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.iteration:
            self._handle = runner.unwrapped_model.conv.weight.register_hook(lambda grad: grad * float("inf"))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self.states.append({k: v.clone() for k, v in runner.unwrapped_model.state_dict().items()})


def test_a_step_the_grad_scaler_skipped_leaves_the_average_alone(tmp_path):
    momentum = 0.5
    cfg = tiny_cfg(
        tmp_path, "val_dataloader=None", "val_cfg=None", "val_evaluator=None",
        "default_hooks.checkpoint=dict(type='CheckpointHook', interval=-1, by_epoch=False)",
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=4), custom_hooks=[dict(type="EMAHook", momentum=momentum)],
    )
    runner = Runner.from_cfg(cfg)
    overflow = Fp16OverflowAt(iteration=2)
    runner.register_hook(overflow)
    initial = {k: v.clone() for k, v in runner.unwrapped_model.state_dict().items()}
    runner.train()
    assert all(torch.equal(overflow.states[1][k], overflow.states[0][k]) for k in initial)  # the scaler skipped step 2
    expected = initial
    for state in overflow.states[:1] + overflow.states[2:]:
        expected = {k: (1 - momentum) * expected[k] + momentum * state[k] for k in expected}
    for key, value in read_checkpoint(tmp_path / "iter_4.pth")["state_dict"].items():
        torch.testing.assert_close(value, expected[key], rtol=1e-6, atol=1e-7, msg=key)
