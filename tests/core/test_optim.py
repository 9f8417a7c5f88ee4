"""The optimisation step: accumulation, clipping, AMP on the CPU, parameter-wise rules."""

import pytest
import torch
from conftest import tiny_cfg
from torch import nn

from trainyard import ConfigError
from trainyard.optim import OptimWrapper, build_optim_wrapper
from trainyard.runner import Runner


def trained_weights(tmp_path, batch_size, accumulative_counts, iterations):
    cfg = tiny_cfg(
        tmp_path,
        f"train_dataloader.batch_size={batch_size}",
        "train_dataloader.sampler=dict(type='DefaultSampler', shuffle=False)",
        f"optim_wrapper.accumulative_counts={accumulative_counts}",
        "optim_wrapper.optimizer=dict(type='SGD', lr=0.5)",
        "default_hooks.checkpoint=None",
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=iterations, val_interval=1000),
        param_scheduler=[],
        val_dataloader=None,
        val_cfg=None,
    )
    return Runner.from_cfg(cfg).train().state_dict()


def test_accumulating_two_batches_of_4_equals_one_batch_of_8(tmp_path):
    accumulated = trained_weights(tmp_path / "a", batch_size=4, accumulative_counts=2, iterations=6)
    large = trained_weights(tmp_path / "b", batch_size=8, accumulative_counts=1, iterations=3)
    for key in large:
        torch.testing.assert_close(accumulated[key], large[key], rtol=1e-5, atol=1e-6)


def test_accumulation_steps_at_the_end_of_training_with_the_remaining_count():
    parameter = nn.Parameter(torch.zeros(1))
    wrapper = OptimWrapper(torch.optim.SGD([parameter], lr=1.0), torch.device("cpu"), accumulative_counts=4)
    wrapper.set_progress(0, 6)
    for _ in range(6):
        wrapper.update_params((1.0 - parameter).sum())  # gradient -1 each call
    # first window: 4 calls of -1/4 -> step of +1; last window: 2 calls of -1/2 -> step of +1
    assert parameter.item() == pytest.approx(2.0)


def test_clipping_bounds_the_gradient_norm():
    parameter = nn.Parameter(torch.zeros(3))
    wrapper = OptimWrapper(torch.optim.SGD([parameter], lr=1.0), torch.device("cpu"), clip_grad={"max_norm": 0.01})
    logged = wrapper.update_params((parameter * torch.tensor([100.0, 200.0, 300.0])).sum())
    assert logged["grad_norm"].item() == pytest.approx((100**2 + 200**2 + 300**2) ** 0.5)
    assert parameter.detach().norm().item() == pytest.approx(0.01, rel=1e-4)


def test_bfloat16_autocast_runs_on_cpu():
    model = nn.Linear(4, 2)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), torch.device("cpu"), dtype="bfloat16")
    with wrapper.optim_context(model):
        output = model(torch.randn(3, 4))
    assert output.dtype is torch.bfloat16
    before = model.weight.detach().clone()
    wrapper.update_params(output.float().pow(2).mean())
    assert not torch.equal(before, model.weight)


def test_amp_training_runs_end_to_end_on_cpu(tmp_path):
    cfg = tiny_cfg(tmp_path, "train_cfg.max_epochs=1", "optim_wrapper.type=AmpOptimWrapper")
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.optim_wrapper.amp_dtype is torch.bfloat16


def test_float16_on_cpu_is_a_config_error():
    with pytest.raises(ConfigError, match="float16.*needs CUDA"):
        OptimWrapper(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1), torch.device("cpu"), dtype="float16")


class NetWithNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.head = nn.Linear(4, 2)


def test_paramwise_rules_set_decay_and_lr_multipliers():
    model = NetWithNorm()
    cfg = dict(
        optimizer=dict(type="SGD", lr=0.1, weight_decay=1e-4),
        paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, custom_keys={"head": dict(lr_mult=0.1)}),
    )
    optimizer = build_optim_wrapper(cfg, model, torch.device("cpu")).optimizer
    settings = {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    assert settings[id(model.backbone[0].weight)] == pytest.approx((0.1, 1e-4))
    assert settings[id(model.backbone[0].bias)] == pytest.approx((0.1, 0.0))
    assert settings[id(model.backbone[1].weight)] == pytest.approx((0.1, 0.0))
    assert settings[id(model.head.weight)] == pytest.approx((0.01, 1e-4))
    assert settings[id(model.head.bias)] == pytest.approx((0.01, 0.0))
    assert len(optimizer.param_groups) == 4  # parameters with equal rules share a group


def test_unknown_optim_wrapper_key_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown keys \\['clip_grads'\\]"):
        build_optim_wrapper(dict(optimizer=dict(type="SGD", lr=0.1), clip_grads=dict(max_norm=1)), nn.Linear(1, 1), torch.device("cpu"))


class TiedHead(nn.Module):
    """An embedding and an output layer sharing one weight, as language models tie them."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.out = nn.Linear(3, 5, bias=False)
        self.out.weight = self.embed.weight


def test_a_parameter_shared_by_two_modules_is_optimised_once():
    model = TiedHead()
    wrapper = build_optim_wrapper(dict(optimizer=dict(type="AdamW", lr=0.1, weight_decay=0.01),
                                       paramwise_cfg=dict(custom_keys={"out": dict(lr_mult=0.5)})), model, torch.device("cpu"))
    parameters = [p for group in wrapper.optimizer.param_groups for p in group["params"]]
    assert len(parameters) == len({id(p) for p in parameters}) == 1
    before = model.embed.weight.detach().clone()
    wrapper.update_params(model.out(model.embed(torch.tensor([1, 2]))).sum())
    assert not torch.equal(model.embed.weight, before) and model.out.weight is model.embed.weight


def scaled_run(tmp_path, *options, auto_scale_lr=None):
    cfg = tiny_cfg(
        tmp_path,
        "train_dataloader.batch_size=4",
        "optim_wrapper.accumulative_counts=2",
        "optim_wrapper.paramwise_cfg=dict(custom_keys=dict(head=dict(lr_mult=0.5)))",
        "default_hooks.checkpoint=None",
        *options,
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=2, val_interval=1000),
        val_dataloader=None,
        val_cfg=None,
    )
    if auto_scale_lr is not None:
        cfg.auto_scale_lr = auto_scale_lr
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def run_log(runner):
    return (runner.run_dir / f"{runner.run_dir.name}.log").read_text()


def test_auto_scale_lr_multiplies_every_group_by_total_batch_over_base_before_the_schedules(tmp_path):
    runner = scaled_run(tmp_path, auto_scale_lr=dict(enable=True, base_batch_size=32))
    # total batch 4 x 1 process x 2 accumulated = 8 of the 32 the lr 0.1 was tuned for
    assert sorted(group["initial_lr"] for group in runner.optimizer.param_groups) == pytest.approx([0.0125, 0.025])
    assert ("auto_scale_lr: lr 0.1 -> 0.025, 0.05 -> 0.0125 (x0.25 = total batch 8 / base_batch_size 32; "
            "total batch = batch_size 4 x world size 1 x accumulative_counts 2)") in run_log(runner)


def test_auto_scale_lr_declared_but_not_enabled_leaves_the_lr(tmp_path):
    runner = scaled_run(tmp_path, auto_scale_lr=dict(enable=False, base_batch_size=32))
    assert sorted(group["initial_lr"] for group in runner.optimizer.param_groups) == pytest.approx([0.05, 0.1])
    assert "auto_scale_lr: lr" not in run_log(runner)


@pytest.mark.parametrize("value, problem", [
    (dict(enable=True), "has no base_batch_size"),
    (dict(enable=True, base_batch_size=0), "base_batch_size must be a positive integer"),
    (dict(enabled=True, base_batch_size=16), r"unknown keys \['enabled'\]"),
])
def test_a_wrong_auto_scale_lr_is_a_config_error_before_anything_is_built(value, problem, tmp_path):
    from trainyard.config import validate_config

    with pytest.raises(ConfigError, match=problem):
        validate_config(tiny_cfg(tmp_path, auto_scale_lr=value), mode="train")


def test_auto_scale_lr_flag_without_a_base_batch_size_names_what_to_add(tmp_path, capsys):
    from trainyard.cli import main

    assert main(["train", "tests/configs/tiny.py", "--work-dir", str(tmp_path), "--auto-scale-lr"]) == 2
    assert "--auto-scale-lr needs auto_scale_lr.base_batch_size" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
