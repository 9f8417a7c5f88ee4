"""Sharded (DCP) checkpoints with 2 gloo processes under torchrun: exact resume after SIGKILL, and resharding 2 <-> 1."""

import os
import random
import shutil

import pytest
import torch
from conftest import assert_same_weights, tiny_cfg
from test_dist import dist_train

from trainyard.checkpoint import read_full_checkpoint
from trainyard.runner import Runner

KILL_POINTS_SEED = 25
DCP = [
    "model.dropout=0.3",  # random per rank: the per-rank random states must come back
    "optim_wrapper.optimizer=dict(_delete_=True, type='AdamW', lr=0.01)",
    "param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=6)]",
    "custom_hooks=[dict(type='EMAHook', momentum=0.2)]",
    "val_cfg=None", "val_dataloader=None", "val_evaluator=None",
]


def checkpoint_hook(async_save=False):
    return ("default_hooks.checkpoint=dict(_delete_=True, type='CheckpointHook', interval=2, by_epoch=False, "
            f"max_keep_ckpts=-1, save_format='dcp', async_save={async_save})")


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    """3 epochs of 3 iterations on 2 processes, saved in the background every 2 iterations."""
    work_dir = tmp_path_factory.mktemp("dcp_two")
    result = dist_train(work_dir, "--cfg-options", *DCP, checkpoint_hook(async_save=True))
    assert result.returncode == 0, result.stderr[-3000:]
    return work_dir


def test_every_rank_wrote_its_random_state_under_its_own_key(two_process_run):
    from torch.distributed.checkpoint import FileSystemReader

    keys = FileSystemReader(str(two_process_run / "iter_4.dcp")).read_metadata().state_dict_metadata
    assert {"rng.rank_0.torch", "rng.rank_1.torch"} <= set(keys)
    assert sorted(p.name for p in two_process_run.glob("*.dcp")) == ["iter_2.dcp", "iter_4.dcp", "iter_6.dcp", "iter_8.dcp", "iter_9.dcp"]


def test_killed_at_a_random_iteration_and_resumed_ends_with_identical_weights(two_process_run, tmp_path):
    seed = int(os.environ.get("TRAINYARD_KILL_SEED", KILL_POINTS_SEED))
    kill_at = random.Random(seed).randint(1, 8)
    drawn = f"rank 1 killed after iteration {kill_at}, drawn with TRAINYARD_KILL_SEED={seed}"
    result = dist_train(
        tmp_path, "--cfg-options", *DCP[:-4], checkpoint_hook(), "resume=auto", *DCP[-3:],
        f"custom_hooks=[dict(type='EMAHook', momentum=0.2), dict(type='KillAtIterHook', iteration={kill_at}, marker='{tmp_path}/killed', rank=1)]",
        env={"MAX_RESTARTS": "1"},
    )
    assert result.returncode == 0, f"{drawn}: {result.stderr[-3000:]}"
    assert (tmp_path / "killed").read_text() == str(kill_at), drawn
    expected, final = read_full_checkpoint(two_process_run / "iter_9.dcp"), read_full_checkpoint(tmp_path / "iter_9.dcp")
    assert_same_weights(expected["state_dict"], final["state_dict"], drawn)


def test_saved_by_two_processes_mid_epoch_resumes_on_one_exactly_at_the_same_sample(two_process_run, tmp_path, capsys):
    """iter_4 of 2 processes x batch 4 is 8 samples into epoch 2; on 1 process x batch 4 (6 per epoch) that is iteration 6 + 2."""
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict_from_keys

    shutil.copytree(two_process_run / "iter_4.dcp", tmp_path / "iter_4.dcp")
    runner = Runner.from_cfg(tiny_cfg(tmp_path, *DCP[:-4], *DCP[-3:], checkpoint_hook(), "train_cfg.max_epochs=2",
                                      f"custom_hooks=[dict(type='RecordLoadedStateHook', out_dir='{tmp_path}/loaded')]", resume="auto"))
    runner.train()
    loaded = torch.load(tmp_path / "loaded" / "rank0.pth", weights_only=True)
    assert loaded["iter"] == 8
    assert "after 8 samples of epoch 2; on 1 processes training continues exactly there, at iteration 8" in capsys.readouterr().out
    saved = _load_state_dict_from_keys({"state_dict", "optimizer.state.state"}, checkpoint_id=str(two_process_run / "iter_4.dcp"))
    assert_same_weights(saved["state_dict"], loaded["model"], "model loaded on 1 process")
    for name, entries in saved["optimizer"]["state"]["state"].items():
        assert all(torch.equal(loaded["optimizer"]["state"][name][k], v) for k, v in entries.items()), f"optimizer {name}"


@pytest.mark.parametrize("wrapper", ["FSDP"])  # each rank loads a shard of each tensor; DDP's whole copies are the easy case
def test_saved_by_one_process_resumes_on_two_with_the_same_model_and_optimizer(tmp_path, wrapper):
    Runner.from_cfg(tiny_cfg(tmp_path / "one", *DCP, checkpoint_hook(), "train_cfg.max_epochs=1", "train_dataloader.batch_size=8")).train()
    shutil.copytree(tmp_path / "one" / "iter_3.dcp", tmp_path / "two" / "iter_3.dcp")
    result = dist_train(tmp_path / "two", "--cfg-options", *DCP[:-4], *DCP[-3:], checkpoint_hook(), "resume=auto", "train_cfg.max_epochs=2",
                        f"model_wrapper_cfg=dict(type='{wrapper}')",
                        f"custom_hooks=[dict(type='RecordLoadedStateHook', out_dir='{tmp_path}/loaded')]")
    assert result.returncode == 0, result.stderr[-3000:]
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict_from_keys

    saved = _load_state_dict_from_keys({"state_dict", "optimizer.state.state"}, checkpoint_id=str(tmp_path / "one" / "iter_3.dcp"))
    for rank in (0, 1):
        loaded = torch.load(tmp_path / "loaded" / f"rank{rank}.pth", weights_only=True)
        assert loaded["iter"] == 3
        assert_same_weights(saved["state_dict"], loaded["model"], f"rank {rank}")
        for name, entries in saved["optimizer"]["state"]["state"].items():
            assert all(torch.equal(loaded["optimizer"]["state"][name][k], v) for k, v in entries.items()), f"rank {rank}: {name}"


# FSDP2: the same promises with the model sharded over the 2 processes (DCP is the default storage there)

FSDP = ["model_wrapper_cfg=dict(type='FSDP')", *DCP[:-4], *DCP[-3:],
        "default_hooks.checkpoint=dict(_delete_=True, type='CheckpointHook', interval=2, by_epoch=False, max_keep_ckpts=-1)"]


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("fsdp_two")
    result = dist_train(work_dir, "--cfg-options", *FSDP)
    assert result.returncode == 0, result.stderr[-3000:]
    return work_dir


def test_fsdp_killed_at_a_random_iteration_and_resumed_ends_with_identical_weights(fsdp_run, tmp_path):
    seed = int(os.environ.get("TRAINYARD_KILL_SEED", KILL_POINTS_SEED))
    kill_at = random.Random(seed + 1).randint(1, 8)
    drawn = f"FSDP: rank 1 killed after iteration {kill_at}, drawn with TRAINYARD_KILL_SEED={seed}"
    result = dist_train(tmp_path, "--cfg-options", *FSDP, "resume=auto",
                        f"custom_hooks=[dict(type='KillAtIterHook', iteration={kill_at}, marker='{tmp_path}/killed', rank=1)]",
                        env={"MAX_RESTARTS": "1"})
    assert result.returncode == 0, f"{drawn}: {result.stderr[-3000:]}"
    assert (tmp_path / "killed").read_text() == str(kill_at), drawn
    assert sorted(p.name for p in fsdp_run.glob("*.dcp"))[-1] == "iter_9.dcp"
    expected, final = read_full_checkpoint(fsdp_run / "iter_9.dcp"), read_full_checkpoint(tmp_path / "iter_9.dcp")
    assert_same_weights(expected["state_dict"], final["state_dict"], drawn)


def test_fsdp_checkpoint_of_two_processes_resumes_on_one_with_the_same_model_and_optimizer(fsdp_run, tmp_path):
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict_from_keys

    shutil.copytree(fsdp_run / "iter_6.dcp", tmp_path / "iter_6.dcp")
    Runner.from_cfg(tiny_cfg(tmp_path, *FSDP, "train_cfg.max_epochs=3",
                             f"custom_hooks=[dict(type='RecordLoadedStateHook', out_dir='{tmp_path}/loaded')]", resume="auto")).train()
    loaded = torch.load(tmp_path / "loaded" / "rank0.pth", weights_only=True)
    assert loaded["iter"] == 12  # end of epoch 2: 6 iterations per epoch on one process
    saved = _load_state_dict_from_keys({"state_dict", "optimizer.state.state"}, checkpoint_id=str(fsdp_run / "iter_6.dcp"))
    assert_same_weights(saved["state_dict"], loaded["model"], "FSDP shards of 2 processes loaded on 1")
    for name, entries in saved["optimizer"]["state"]["state"].items():
        assert all(torch.equal(loaded["optimizer"]["state"][name][k], v) for k, v in entries.items()), f"optimizer {name}"
