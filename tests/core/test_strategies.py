"""Model-parallel strategies: the FSDP2 strategy's checks in one process, and FSDP against DDP on 2 gloo processes."""

import json
import sys

import pytest
import torch
import torch.distributed as torch_dist
from conftest import free_port, run_command
from torch import nn

from trainyard import strategies
from trainyard.errors import CheckpointError, ConfigError
from trainyard.strategies import DDPStrategy, FSDPStrategy, SingleProcessStrategy, build_strategy

CPU = torch.device("cpu")


def test_fsdp_on_gloo_below_torch_2_9_is_refused_naming_pytorch_issue_162338(monkeypatch):
    monkeypatch.setattr(strategies, "torch_release", lambda: (2, 8))
    with pytest.raises(ConfigError, match=r"needs torch >= 2\.9.*2x too large.*pytorch issue 162338"):
        build_strategy(dict(type="FSDP"), 2, CPU, backend="gloo")
    assert isinstance(build_strategy(dict(type="FSDP"), 2, CPU, backend="nccl"), FSDPStrategy)  # the bug is gloo's
    monkeypatch.setattr(strategies, "torch_release", lambda: (2, 9))
    assert isinstance(build_strategy(dict(type="FSDP"), 2, CPU, backend="gloo"), FSDPStrategy)


def test_the_installed_torch_release_is_read_from_its_version():
    assert strategies.torch_release() == tuple(int(part) for part in torch.__version__.split(".")[:2])


def test_ddp_stays_the_default_for_several_processes_and_one_process_gets_the_model_as_built():
    assert isinstance(build_strategy(None, 2, CPU, backend="gloo"), DDPStrategy)
    assert isinstance(build_strategy(dict(type="MMDistributedDataParallel", find_unused_parameters=True), 2, CPU), DDPStrategy)
    assert isinstance(build_strategy(dict(type="DDP"), 1, CPU), SingleProcessStrategy)


@pytest.mark.parametrize("options, message", [
    (dict(sync_bn=True), r"unknown keys \['sync_bn'\] for type='FSDP' \(sync_bn and the other DDP options do not apply"),
    (dict(shard="Block", mixed_precision=dict(param_dtype="bfloat8")), r"mixed_precision.param_dtype='bfloat8'; use one of"),
    (dict(mixed_precision=dict(buffer_dtype="float32")), r"mixed_precision has unknown keys \['buffer_dtype'\]"),
    (dict(shard=[nn.Linear]), r"shard must be a list of module class names"),
    (dict(cpu_offload=True), r"cpu_offload=True needs a CUDA device"),
])
def test_fsdp_config_mistakes_are_one_line_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        build_strategy(dict(type="FSDP", **options), 2, CPU, backend="gloo")


def test_an_unsharded_model_keeps_its_state_dicts_plain():
    model = nn.Linear(3, 2)
    strategy = build_strategy(dict(type="FSDP"), 1, CPU)
    assert strategy.wrap(model) is model  # one process without a process group: nothing to shard over
    state = strategy.model_state_dict()
    assert set(state) == {"weight", "bias"} and not strategies._is_dtensor(state["weight"])


# one process in a gloo group: FSDP2 shards over a mesh of one


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear, self.norm = nn.Linear(4, 4), nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear(x)).relu()


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(Block(), Block(), nn.Linear(4, 2))


@pytest.fixture
def one_process_group(tmp_path):
    torch_dist.init_process_group("gloo", store=torch_dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    yield
    torch_dist.destroy_process_group()


def test_ddp_skips_the_all_reduce_on_micro_steps_and_refuses_sync_bn_on_the_cpu(one_process_group):
    strategy = build_strategy(dict(type="MMDistributedDataParallel", detect_anomalous_params=True), 2, CPU)
    wrapped = strategy.wrap(small_model())
    assert isinstance(wrapped, nn.parallel.DistributedDataParallel) and wrapped.module is strategy.model
    with strategy.gradient_sync(False):
        assert not wrapped.require_backward_grad_sync
    assert wrapped.require_backward_grad_sync
    with pytest.raises(ConfigError, match=r"sync_bn=True needs CUDA"):
        build_strategy(dict(sync_bn=True), 2, CPU).wrap(small_model())


def test_ddp_broadcasts_buffers_before_a_forward_only_when_the_config_asks(one_process_group):
    """Rank 0's buffers are copied at the start and before each evaluation instead (share_buffers); the config's
    broadcast_buffers=True goes to DDP under torch 2.14's new name where DDP has it, with no deprecation warning."""
    import warnings

    new_name = "forward_sync_buffers" in strategies.ddp_parameters()
    for options, forward_sync, policy in ((dict(), False, "evaluation"), (dict(broadcast_buffers=True), True, "every_forward"),
                                          (dict(forward_sync_buffers=True), True, "every_forward")):
        if not new_name and "forward_sync_buffers" in options:
            continue
        strategy = build_strategy(options, 2, CPU)
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            wrapped = strategy.wrap(small_model())
        assert (wrapped.forward_sync_buffers if new_name else wrapped.broadcast_buffers) is forward_sync, options
        assert strategy.buffers == policy
    kept_per_rank = build_strategy(dict(broadcast_buffers=False), 2, CPU)
    assert kept_per_rank.options["broadcast_buffers"] is False and kept_per_rank.buffers == "rank_local"  # torch's own meaning
    with pytest.raises(ConfigError, match=r"broadcast_buffers must be True, False or unset, got 'yes'"):
        build_strategy(dict(broadcast_buffers="yes"), 2, CPU)


def _buffers_on_two_ranks(rank: int, store: str, out: str) -> None:
    """Each policy of a 2-rank run: a batch norm's running mean after wrapping (ranks started different) and after
    share_buffers (the ranks had drifted apart again)."""
    torch_dist.init_process_group("gloo", store=torch_dist.FileStore(store, 2), rank=rank, world_size=2)
    try:
        seen = {}
        for label, options in (("unset", {}), ("true", dict(broadcast_buffers=True)), ("false", dict(broadcast_buffers=False)),
                               ("fsdp", dict(type="FSDP")), ("fsdp_false", dict(type="FSDP", broadcast_buffers=False))):
            model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
            model[1].running_mean.fill_(rank + 1.0)
            strategy = build_strategy(options, 2, CPU, backend="gloo")
            strategy.wrap(model)
            at_start = model[1].running_mean.tolist()
            model[1].running_mean.fill_(rank + 10.0)
            strategy.share_buffers()
            seen[label] = (at_start, model[1].running_mean.tolist())
        torch.save(seen, f"{out}.{rank}")
    finally:
        torch_dist.destroy_process_group()


def test_every_rank_starts_and_evaluates_from_rank_zeros_buffers_unless_kept_per_rank(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.multiprocessing.spawn(_buffers_on_two_ranks, args=(str(tmp_path / "store"), str(tmp_path / "seen")), nprocs=2)
    for rank in (0, 1):
        seen = torch.load(tmp_path / f"seen.{rank}")
        for label in ("unset", "true", "fsdp"):
            assert seen[label] == ([1.0, 1.0], [10.0, 10.0]), (rank, label)
        for label in ("false", "fsdp_false"):
            assert seen[label] == ([rank + 1.0] * 2, [rank + 10.0] * 2), (rank, label)


def test_fsdp_shards_the_named_blocks_then_the_root(one_process_group):
    from torch.distributed.fsdp import FSDPModule

    model = small_model()
    strategy = build_strategy(dict(type="FSDP", shard=["Block"]), 1, CPU)
    assert strategy.wrap(model) is model and strategy.model is model  # in place
    assert [isinstance(m, FSDPModule) for m in model] == [True, True, False] and isinstance(model, FSDPModule)
    assert all(strategies._is_dtensor(p) for p in model.parameters())


def test_a_shard_class_the_model_lacks_is_named_with_a_suggestion(one_process_group):
    with pytest.raises(ConfigError, match=r"shard names \['Blok'\], which Sequential has no submodule of; did you mean Block\?"):
        build_strategy(dict(type="FSDP", shard=["Blok"]), 1, CPU).wrap(small_model())


def test_the_models_no_split_modules_are_its_blocks_when_the_config_names_none(one_process_group):
    from torch.distributed.fsdp import FSDPModule

    model = small_model()
    model._no_split_modules = ["Block"]
    build_strategy(dict(type="FSDP"), 1, CPU).wrap(model)
    assert isinstance(model[0], FSDPModule) and not isinstance(model[2], FSDPModule)


def test_an_optimizer_built_before_sharding_is_refused_and_one_built_after_is_accepted(one_process_group):
    model = small_model()
    too_early = torch.optim.SGD(model.parameters(), lr=0.1)
    strategy = build_strategy(dict(type="FSDP", shard=["Block"]), 1, CPU)
    strategy.wrap(model)
    expected = r"holds 10 parameters that are not sharded DTensors \(e\.g\. 0\.linear\.weight\): it was built before the model was sharded"
    with pytest.raises(ConfigError, match=expected):
        strategy.check_optimizer(too_early)
    strategy.check_optimizer(torch.optim.SGD(model.parameters(), lr=0.1))


def test_clipping_sharded_gradients_returns_the_total_norm_as_a_plain_tensor(one_process_group):
    model = small_model()
    strategy = build_strategy(dict(type="FSDP", shard=["Block"]), 1, CPU)
    strategy.wrap(model)
    model(torch.randn(5, 4)).square().sum().backward()
    expected = torch.linalg.vector_norm(torch.stack([p.grad.full_tensor().norm() for p in model.parameters()]))
    norm = strategy.clip_grad_norm_(model.parameters(), max_norm=1e-3)
    assert not strategies._is_dtensor(norm)
    torch.testing.assert_close(norm, expected)
    clipped = torch.linalg.vector_norm(torch.stack([p.grad.full_tensor().norm() for p in model.parameters()]))
    torch.testing.assert_close(clipped, torch.tensor(1e-3), rtol=1e-3, atol=0)


def test_full_model_and_optimizer_state_round_trip_under_fsdp(one_process_group):
    model = small_model()
    strategy = build_strategy(dict(type="FSDP", shard=["Block"]), 1, CPU)
    strategy.wrap(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    weights, optimizer_state = strategy.model_state_dict(), strategy.optimizer_state_dict(optimizer)
    assert not any(strategies._is_dtensor(v) for v in weights.values())
    assert len(optimizer_state["state"]) == 10 and "0.linear.weight" in optimizer_state["state"]
    saved = {k: v.clone() for k, v in weights.items()}  # on the CPU, a full state dict may share the live weights' memory
    optimizer_state = {"state": {k: {n: t.clone() for n, t in v.items()} for k, v in optimizer_state["state"].items()},
                       "param_groups": optimizer_state["param_groups"]}
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()  # moves the weights and the moments away, and leaves gradients in place (pytorch issue 140898)
    given = dict(saved)
    strategy.load_model_state_dict(given)
    strategy.load_optimizer_state_dict(optimizer, optimizer_state)
    assert not any(strategies._is_dtensor(v) for v in given.values())  # the caller's dict is left as given
    for key, value in strategy.model_state_dict().items():
        assert torch.equal(value, saved[key]), key
    restored = strategy.optimizer_state_dict(optimizer)["state"]
    assert torch.equal(restored["0.linear.weight"]["exp_avg"], optimizer_state["state"]["0.linear.weight"]["exp_avg"])


def test_load_from_weights_and_the_emas_training_weights_load_into_a_sharded_model(one_process_group):
    """Full weights from a file (load_from, a single-file checkpoint's EMA state) into a model FSDP sharded."""
    from types import SimpleNamespace

    from trainyard.checkpoint import load_model_state
    from trainyard.hooks.ema import EMAHook

    full = {k: v + 1 for k, v in small_model().state_dict().items()}
    model = small_model()
    build_strategy(dict(type="FSDP", shard=["Block"]), 1, CPU).wrap(model)
    missing, unexpected = load_model_state(model, {k: v for k, v in full.items() if k != "2.bias"}, "weights.pth", strict=False)
    assert (missing, unexpected) == (["2.bias"], [])
    assert torch.equal(model.state_dict()["2.weight"].full_tensor(), full["2.weight"])
    ema = EMAHook()
    ema.load_state_dict({"training_weights": full})
    ema.after_load_checkpoint(SimpleNamespace(unwrapped_model=model), {})
    assert all(torch.equal(v.full_tensor(), full[k]) for k, v in model.state_dict().items() if strategies._is_dtensor(v))


def test_dtensors_nested_in_a_state_become_full_cpu_tensors_and_the_rest_stays(one_process_group):
    model = small_model()
    build_strategy(dict(type="FSDP", shard=["Block"]), 1, CPU).wrap(model)
    sharded = model.state_dict()
    state = {"hooks": {"EMAHook": {"ema": sharded}}, "rng": [torch.ones(2)], "pair": (sharded["2.bias"], 3), "iter": 7}
    full = strategies.gather_full_tensors(state)
    assert not any(strategies._is_dtensor(v) for v in full["hooks"]["EMAHook"]["ema"].values())
    assert torch.equal(full["pair"][0], sharded["2.bias"].full_tensor()) and full["pair"][1] == 3
    assert full["iter"] == 7 and torch.equal(full["rng"][0], torch.ones(2))


def test_the_weights_check_before_a_save_reads_the_shards_of_a_sharded_model(one_process_group):
    from trainyard.checkpoint import non_finite_weights

    model = small_model()
    build_strategy(dict(type="FSDP", shard=["Block"]), 1, CPU).wrap(model)
    assert non_finite_weights(model) == []
    with torch.no_grad():
        model[1].linear.weight.to_local()[0, 0] = float("nan")
    assert non_finite_weights(model) == ["1.linear.weight"]


def test_an_accumulation_micro_step_leaves_gradients_unreduced_and_the_next_call_steps(one_process_group):
    from trainyard.optim import OptimWrapper

    model = small_model()
    strategy = build_strategy(dict(type="FSDP", shard=["Block"]), 1, CPU)
    strategy.wrap(model)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), CPU, accumulative_counts=2, strategy=strategy)
    before = {k: v.clone() for k, v in strategy.model_state_dict().items()}
    for call in range(2):
        with wrapper.optim_context(model):
            loss = model(torch.randn(5, 4)).sum()
        wrapper.update_params(loss)
        if call == 0:  # FSDP2 kept the unsharded gradients: nothing reduce-scattered into the sharded parameters yet
            assert not wrapper.stepped and all(p.grad is None for p in model.parameters())
            with pytest.raises(CheckpointError, match="under FSDP a checkpoint cannot be saved inside a gradient-accumulation window"):
                wrapper.state_dict()
    assert wrapper.stepped
    assert not torch.equal(strategy.model_state_dict()["2.weight"], before["2.weight"])


# 2 gloo processes: FSDP trains what DDP trains


UNET, CLS = "configs/seg/unet.py", "configs/cls/small_cnn_generated.py"
QUICK = ["train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False", "custom_hooks=[]",
         "default_hooks.checkpoint=None", "default_hooks.logger.interval=10", "default_hooks.model_summary=None"]
SEG = QUICK + ["train_dataloader.batch_size=2", "train_dataloader.dataset.size=32", "train_dataloader.dataset.length=200",
               "val_dataloader.dataset.size=32", "val_dataloader.dataset.length=32",
               "train_cfg=dict(type='IterBasedTrainLoop', max_iters=50, val_interval=50)"]
VIT = QUICK + ["train_dataloader.batch_size=4", "train_dataloader.dataset.length=400", "val_dataloader.dataset.length=32",
               "model.backbone=dict(_delete_=True, type='TimmBackbone', name='vit_tiny_patch16_224', img_size=32, patch_size=8, "
               "depth=2, embed_dim=32, num_heads=2)", "val_evaluator=dict(_delete_=True, type='Accuracy')",
               "train_cfg=dict(_delete_=True, type='IterBasedTrainLoop', max_iters=50, val_interval=50)"]
SGD = ["optim_wrapper.optimizer=dict(_delete_=True, type='SGD', lr=0.05, momentum=0.9)", "param_scheduler=[]",
       "optim_wrapper.accumulative_counts=2", "optim_wrapper.clip_grad=dict(max_norm=1.0)"]
FSDP_UNET = "model_wrapper_cfg=dict(type='FSDP', shard=['_DoubleConv'])"
RUNS = [
    dict(name="unet_ddp_sgd", config=UNET, options=SEG + SGD),
    dict(name="unet_fsdp_sgd", config=UNET, options=SEG + SGD + [FSDP_UNET]),
    dict(name="vit_ddp_sgd", config=CLS, options=VIT + SGD[:2]),
    dict(name="vit_fsdp_sgd", config=CLS, options=VIT + SGD[:2] + ["model_wrapper_cfg=dict(type='FSDP', shard=['Block'])"]),
    dict(name="unet_ddp_adamw", config=UNET, options=SEG),  # the config's AdamW and schedule
    dict(name="unet_fsdp_adamw", config=UNET, options=SEG + [FSDP_UNET]),
    dict(name="unet_fsdp_everything", config=UNET, options=SEG + [
        "model_wrapper_cfg=dict(type='FSDP', shard=['_DoubleConv'], reshard_after_forward=False, activation_checkpointing=['_DoubleConv'], "
        "mixed_precision=dict(param_dtype='bfloat16', reduce_dtype='float32'))",
        "optim_wrapper.dtype='bfloat16'", "optim_wrapper.clip_grad=dict(max_norm=1.0)", "optim_wrapper.accumulative_counts=2",
        "custom_hooks=[dict(type='EMAHook', momentum=0.1)]", "default_hooks.nan_guard.interval=1",
        "train_cfg=dict(type='IterBasedTrainLoop', max_iters=10, val_interval=10)"]),
]


@pytest.fixture(scope="module")
def strategy_runs(tmp_path_factory):
    """Every run of ``RUNS`` in one torchrun launch of 2 processes: their final weights and last validation metrics."""
    folder = tmp_path_factory.mktemp("strategy_runs")
    (folder / "runs.json").write_text(json.dumps(RUNS))
    result = run_command([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
                          "tests/strategy_runs.py", str(folder / "runs.json"), str(folder / "out.json")], timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return folder, json.loads((folder / "out.json").read_text())


def largest_difference(folder, first, second):
    a, b = torch.load(folder / f"{first}.pth"), torch.load(folder / f"{second}.pth")
    assert set(a) == set(b)
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.mark.parametrize("model", ["unet", "vit"])
def test_fsdp_with_sgd_trains_to_the_weights_ddp_trains_within_1e_5(strategy_runs, model):
    folder, runs = strategy_runs
    assert (runs[f"{model}_ddp_sgd"]["strategy"], runs[f"{model}_fsdp_sgd"]["strategy"]) == ("ddp", "fsdp")
    assert runs[f"{model}_fsdp_sgd"]["sharded"] and not runs[f"{model}_ddp_sgd"]["sharded"]
    assert largest_difference(folder, f"{model}_ddp_sgd", f"{model}_fsdp_sgd") <= 1e-5


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])  # with and without accumulation micro-steps
def test_batch_norm_statistics_are_each_ranks_own_and_rank_zeros_for_evaluation(strategy_runs, optimizer):
    """Each rank updates its own running statistics (as DDP with broadcast_buffers=False, and FSDP, do); every
    evaluation starts from rank 0's on every rank, the ones a checkpoint holds."""
    folder, _ = strategy_runs
    ddp, fsdp = (torch.load(folder / f"unet_{kind}_{optimizer}.buffers.pth") for kind in ("ddp", "fsdp"))
    mean = "encoder.0.1.running_mean"
    assert not torch.equal(ddp["before_val"][0][mean], ddp["before_val"][1][mean])  # the ranks do differ while training
    for run in (ddp, fsdp):
        for rank in (0, 1):
            for name, value in run["before_val"][0].items():  # validation ran on rank 0's; nothing trained after it
                assert torch.equal(run["end"][rank][name], value), (rank, name)
    for rank in (0, 1):
        for name, value in ddp["before_val"][rank].items():
            torch.testing.assert_close(fsdp["before_val"][rank][name], value, rtol=0, atol=1e-6, msg=f"rank {rank}: {name}")


def test_fsdp_with_the_configs_adamw_validates_within_0_01_of_ddp(strategy_runs):
    folder, runs = strategy_runs
    ddp, fsdp = runs["unet_ddp_adamw"]["metrics"]["mIoU"], runs["unet_fsdp_adamw"]["metrics"]["mIoU"]
    assert abs(ddp - fsdp) <= 0.01, (ddp, fsdp)


def test_fsdp_trains_with_mixed_precision_checkpointing_amp_accumulation_clipping_ema_and_the_nan_guard(strategy_runs):
    folder, runs = strategy_runs
    run = runs["unet_fsdp_everything"]
    assert run["sharded"] and 0 <= run["metrics"]["mIoU"] <= 1
    weights = torch.load(folder / "unet_fsdp_everything.pth")
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    assert weights["head.weight"].dtype == torch.float32  # mixed precision computes in bf16, keeps float32 weights


@pytest.mark.parametrize("key", ["shard", "activation_checkpointing"])
def test_fsdp_block_names_are_checked_against_the_model_in_one_process_too(key):
    strategy = build_strategy(dict(type="FSDP", **{key: ["NoSuchBlock"]}), 1, CPU)
    with pytest.raises(ConfigError, match=rf"model_wrapper_cfg.{key} names \['NoSuchBlock'\], which Sequential has no submodule of"):
        strategy.wrap(small_model())
    assert build_strategy(dict(type="FSDP", shard=["Block"]), 1, CPU).wrap(small_model()) is not None


def test_fsdp_refuses_before_training_a_checkpoint_interval_that_splits_an_accumulation_window(one_process_group):
    from trainyard.hooks.checkpoint import CheckpointHook

    strategy = build_strategy(dict(type="FSDP", shard=["Block"]), 1, CPU)
    strategy.wrap(small_model())
    with pytest.raises(ConfigError, match=r"default_hooks.checkpoint.interval saves every 1 epoch\(s\) of 3 iterations.*accumulative_counts=2"):
        strategy.check_save_points(2, [CheckpointHook(interval=1)], iters_per_epoch=3)
    with pytest.raises(ConfigError, match=r"every 3 iterations.*optim_wrapper.accumulative_counts=2"):
        strategy.check_save_points(2, [CheckpointHook(interval=3, by_epoch=False)], iters_per_epoch=3)
    strategy.check_save_points(2, [CheckpointHook(interval=2)], iters_per_epoch=3)  # every 6 iterations
    strategy.check_save_points(2, [CheckpointHook(interval=-1)], iters_per_epoch=3)
    strategy.check_save_points(1, [CheckpointHook(interval=1)], iters_per_epoch=3)
    DDPStrategy({}, CPU).check_save_points(2, [CheckpointHook(interval=1)], iters_per_epoch=3)  # DDP saves the partial gradients


def test_under_fsdp_the_checkpoint_after_the_last_shorter_accumulation_window_saves(one_process_group):
    from trainyard.optim import OptimWrapper

    model = small_model()
    strategy = build_strategy(dict(type="FSDP", shard=["Block"]), 1, CPU)
    strategy.wrap(model)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), CPU, accumulative_counts=2, strategy=strategy)
    wrapper.set_progress(0, 3)
    for _ in range(3):
        with wrapper.optim_context(model):
            loss = model(torch.randn(5, 4)).sum()
        wrapper.update_params(loss)
    assert wrapper.stepped and "partial_grads" not in wrapper.state_dict()
