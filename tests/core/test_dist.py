"""Distributed training for real: 2 CPU processes with gloo, started by torchrun."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import free_port, run_command, run_trainyard

from trainyard.checkpoint import read_checkpoint

TINY = "tests/configs/tiny.py"


def dist_train(work_dir, *options, nproc=2, env=None, timeout=300):
    env = {"PORT": str(free_port()), **(env or {})}
    return run_command(["bash", "tools/dist_train.sh", TINY, str(nproc), "--work-dir", str(work_dir), *options], env=env, timeout=timeout)


def test_dist_train_script_runs_two_processes_and_the_checkpoint_loads_in_one(tmp_path):
    result = dist_train(tmp_path, "--cfg-options", "train_cfg.max_epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world size 2" in result.stdout
    assert result.stdout.count("training finished") == 1  # only rank 0 prints
    state = read_checkpoint(tmp_path / "epoch_2.pth")
    assert state["meta"]["world_size"] == 2 and len(state["rng"]) == 2
    test = run_trainyard("test", TINY, str(tmp_path / "epoch_2.pth"), "--work-dir", str(tmp_path))
    assert test.returncode == 0, test.stderr


SAME_DATA = [
    "train_dataloader.sampler=dict(type='DefaultSampler', shuffle=False)",
    "optim_wrapper.optimizer=dict(type='SGD', lr=0.5, momentum=0.9)",
    "default_hooks.checkpoint=dict(type='CheckpointHook', interval=5, by_epoch=False)",
    "train_cfg=dict(_delete_=True, type='IterBasedTrainLoop', max_iters=5, val_interval=1000)",
    "param_scheduler=[]",
]


def test_two_processes_on_half_batches_match_one_process_on_the_whole_batch(tmp_path):
    two = dist_train(tmp_path / "two", "--cfg-options", *SAME_DATA, "train_dataloader.batch_size=4")
    assert two.returncode == 0, two.stderr[-3000:]
    one = run_trainyard("train", TINY, "--work-dir", str(tmp_path / "one"), "--cfg-options", *SAME_DATA, "train_dataloader.batch_size=8")
    assert one.returncode == 0, one.stderr
    distributed = read_checkpoint(tmp_path / "two/iter_5.pth")["state_dict"]
    single = read_checkpoint(tmp_path / "one/iter_5.pth")["state_dict"]
    for key in single:
        torch.testing.assert_close(distributed[key], single[key], rtol=1e-5, atol=1e-6)


def test_distributed_evaluation_equals_single_process_on_an_odd_sized_dataset(tmp_path):
    trained = run_trainyard("train", TINY, "--work-dir", str(tmp_path), "--cfg-options", "train_cfg.max_epochs=1")
    assert trained.returncode == 0, trained.stderr
    options = ["--cfg-options", "test_dataloader.dataset.length=11", "test_dataloader.batch_size=2",
               "test_evaluator=[dict(type='ToyAccuracy'), dict(type='ToyGatherAccuracy')]"]
    single = run_trainyard("test", TINY, str(tmp_path / "epoch_1.pth"), "--work-dir", str(tmp_path), "--out", str(tmp_path / "one.json"), *options)
    assert single.returncode == 0, single.stderr
    double = run_command(["bash", "tools/dist_test.sh", TINY, str(tmp_path / "epoch_1.pth"), "2", "--work-dir", str(tmp_path),
                          "--out", str(tmp_path / "two.json"), *options], env={"PORT": str(free_port())})
    assert double.returncode == 0, double.stderr[-3000:]
    one, two = json.loads((tmp_path / "one.json").read_text()), json.loads((tmp_path / "two.json").read_text())
    assert one == two and one["samples"] == 11


def test_killed_rank_is_restarted_by_torchrun_and_the_run_resumes(tmp_path):
    result = dist_train(
        tmp_path, "--cfg-options", "resume=auto", "train_cfg.max_epochs=3",
        "default_hooks.checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False)",
        f"custom_hooks=[dict(type='KillAtIterHook', iteration=5, marker='{tmp_path}/killed', rank=1)]",
        env={"MAX_RESTARTS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "killed").read_text() == "5"
    assert "resumed from" in result.stdout and "iteration 4" in result.stdout
    assert read_checkpoint(tmp_path / "iter_9.pth")["meta"]["iter"] == 9  # 3 epochs of 3 iterations per rank


def test_an_error_on_one_rank_ends_the_whole_job_with_the_error_and_no_process_left(tmp_path):
    marker = tmp_path / "unique-run-marker"
    result = dist_train(marker, "--cfg-options", "custom_hooks=[dict(type='FailingHook', rank=1)]", "env_cfg.timeout=60", timeout=120)
    assert result.returncode != 0
    assert "user hook failed at iteration 1" in result.stderr
    leftover = subprocess.run(["pgrep", "-f", str(marker)], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""


def test_an_error_on_rank_1_at_iteration_3_ends_the_job_quickly_with_that_message_once(tmp_path):
    import time

    started = time.monotonic()
    result = dist_train(tmp_path, "--cfg-options", "custom_hooks=[dict(type='FailingHook', rank=1, iteration=3)]", "env_cfg.timeout=60", timeout=120)
    seconds = time.monotonic() - started
    assert result.returncode != 0
    assert seconds < 60, seconds
    assert result.stderr.count("ValueError: user hook failed at iteration 3") == 1, result.stderr[-4000:]
    assert "rank 0: stopped because another process of this job failed or left" in result.stderr
    assert "[rank0]: Traceback" not in result.stderr and "[rank0]:" not in result.stderr


def test_a_nan_loss_on_one_rank_stops_both_ranks_and_keeps_the_good_checkpoint(tmp_path):
    result = dist_train(
        tmp_path, "--cfg-options", "train_dataloader.sampler=dict(type='DefaultSampler', shuffle=False)",
        "train_dataloader.dataset.nan_indices=(21,)",  # batch 6 of rank 1 only (ranks take alternate samples)
        "default_hooks.checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)", timeout=120,
    )
    assert result.returncode != 0
    assert result.stderr.count("NaN or infinite at iteration 3 on rank 1") == 1, result.stderr[-3000:]
    assert result.stderr.count("Traceback") <= 1  # torchrun's own summary only
    assert (tmp_path / "last_checkpoint").read_text().endswith("iter_2.pth")
    assert torch.isfinite(read_checkpoint(tmp_path / "iter_2.pth")["state_dict"]["conv.weight"]).all()


def test_a_collective_timeout_ends_the_job_with_one_message_naming_the_causes(tmp_path):
    result = dist_train(tmp_path, "--cfg-options", "custom_hooks=[dict(type='StallHook', rank=1, iteration=3, seconds=12)]",
                        "env_cfg.timeout=4", timeout=120)
    assert result.returncode != 0
    assert result.stderr.count("rank 0: a collective operation timed out") == 1, result.stderr[-3000:]
    assert "env_cfg.timeout" in result.stderr and "[rank0]:" not in result.stderr


@pytest.mark.parametrize("script", ["slurm_train.sh", "slurm_test.sh"])
def test_slurm_scripts_pass_arguments_to_srun_safely(tmp_path, script):
    fake_srun = tmp_path / "srun"
    fake_srun.write_text('#!/usr/bin/env bash\nfor arg in "$@"; do printf "<%s>\\n" "$arg"; done\n')
    fake_srun.chmod(0o755)
    import os

    args = ["gpu", "my job", TINY] + (["ckpt with space.pth"] if script == "slurm_test.sh" else []) + ["--cfg-options", "name=a b"]
    result = run_command(["bash", f"tools/{script}", *args],
                         env={"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "GPUS": "4", "GPUS_PER_NODE": "2", "SRUN_ARGS": "--exclusive --quotatype=auto"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:9] == ["<-p>", "<gpu>", "<--job-name=my job>", "<--gres=gpu:2>", "<--ntasks=4>", "<--ntasks-per-node=2>",
                         "<--cpus-per-task=5>", "<--kill-on-bad-exit=1>", "<--exclusive>"]
    assert "<--launcher>" in lines and "<slurm>" in lines and "<name=a b>" in lines
    if script == "slurm_test.sh":
        assert "<ckpt with space.pth>" in lines


# faults: each rank started on its own, as srun or torch.multiprocessing start them (no torchrun agent stops the others)


def train_ranks_without_agent(work_dir, *options, timeout=120):
    """``trainyard train`` in two plain processes of one gloo job; returns their results and when each ended."""
    import time

    from conftest import REPO, trainyard_env

    port, started = str(free_port()), time.monotonic()
    ranks = [
        subprocess.Popen(
            [sys.executable, "-m", "trainyard", "train", TINY, "--work-dir", str(work_dir), "--cfg-options", *options],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=trainyard_env({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
                               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1"}),
        )
        for rank in (0, 1)
    ]
    results, ended = [], [0.0, 0.0]
    while any(rank.poll() is None for rank in ranks) and time.monotonic() - started < timeout:
        for index, rank in enumerate(ranks):
            if rank.poll() is not None and not ended[index]:
                ended[index] = time.monotonic()
        time.sleep(0.05)
    for index, rank in enumerate(ranks):
        stdout, stderr = rank.communicate(timeout=max(timeout - (time.monotonic() - started), 1))
        ended[index] = ended[index] or time.monotonic()
        results.append(subprocess.CompletedProcess(rank.args, rank.returncode, stdout, stderr))
    return results, ended


def test_a_save_failing_on_rank_0_stops_every_rank_at_that_save_with_the_error_printed_once(tmp_path):
    results, ended = train_ranks_without_agent(tmp_path, "custom_hooks=[dict(type='DiskFullHook', rank=0)]", "env_cfg.timeout=60")
    stderr = results[0].stderr + results[1].stderr
    assert all(r.returncode != 0 for r in results), stderr[-3000:]
    assert abs(ended[1] - ended[0]) < 5, ended
    assert stderr.count("could not write checkpoint") == 1 and "No space left on device" in results[0].stderr
    assert "another process" not in stderr  # rank 1 stopped for the save error itself, not for a lost peer
    assert "Traceback" not in stderr


def test_a_user_error_mentioning_a_timeout_keeps_its_traceback_under_two_processes(tmp_path):
    results, _ = train_ranks_without_agent(tmp_path, "train_dataloader.dataset.type='ReadTimeoutDataset'", "env_cfg.timeout=60")
    for result in results:
        assert result.returncode != 0
        assert "Traceback" in result.stderr and "TimeoutError: read timeout" in result.stderr, result.stderr[-3000:]
        assert "collective operation timed out" not in result.stderr


def test_only_the_process_groups_own_errors_count_as_collective_failures():
    from trainyard.dist import is_collective_failure

    gloo = "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:561] Connection closed by peer [127.0.0.1]:10649"
    assert is_collective_failure(RuntimeError(gloo))
    assert is_collective_failure(torch.distributed.DistBackendError("NCCL watchdog: collective operation timeout"))
    assert not is_collective_failure(TimeoutError("read timeout"))
    assert not is_collective_failure(RuntimeError("HTTPSConnectionPool: Read timed out. Broken pipe"))


# gradient accumulation: a checkpoint inside a window (4 of accumulative_counts=3) on 2 ranks

WINDOW = [
    "optim_wrapper.accumulative_counts=3",
    "train_cfg=dict(_delete_=True, type='IterBasedTrainLoop', max_iters=6, val_interval=1000)",
    "default_hooks.checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False)",
    "param_scheduler=[]",
]


@pytest.fixture(scope="module")
def window_run(tmp_path_factory):
    """2 ranks, saved at iteration 4 (inside a window) and 6; each rank records whether its state held partial gradients."""
    work_dir = tmp_path_factory.mktemp("window")
    result = dist_train(work_dir, "--cfg-options", *WINDOW, f"custom_hooks=[dict(type='RecordPartialGradsHook', out_dir='{work_dir}/seen')]")
    assert result.returncode == 0, result.stderr[-3000:]
    return work_dir


def test_partial_gradients_of_every_rank_reach_only_rank_0_which_writes_them(window_run):
    assert json.loads((window_run / "seen/rank0.json").read_text()) == {"4": True, "6": False}
    assert json.loads((window_run / "seen/rank1.json").read_text()) == {"4": False, "6": False}
    rank0, rank1 = read_checkpoint(window_run / "iter_4.pth")["optimizer"]["partial_grads"]
    assert all(g.device.type == "cpu" for g in rank0 + rank1)
    assert not torch.equal(rank0[0], rank1[0])  # each rank's own batches, not yet reduced


def test_a_two_rank_run_resumed_inside_a_window_on_two_ranks_ends_with_identical_weights(window_run, tmp_path):
    result = dist_train(tmp_path, "--resume", str(window_run / "iter_4.pth"), "--cfg-options", *WINDOW)
    assert result.returncode == 0, result.stderr[-3000:]
    expected, resumed = read_checkpoint(window_run / "iter_6.pth"), read_checkpoint(tmp_path / "iter_6.pth")
    for key in expected["state_dict"]:
        assert torch.equal(expected["state_dict"][key], resumed["state_dict"][key]), key


def test_resuming_inside_a_window_on_another_world_size_is_refused_in_one_line(window_run, tmp_path):
    result = run_trainyard("train", TINY, "--work-dir", str(tmp_path), "--resume", str(window_run / "iter_4.pth"),
                           "--cfg-options", *WINDOW, "train_dataloader.batch_size=8")  # the same global batch
    assert result.returncode == 2, result.stderr[-3000:]
    assert "inside a gradient-accumulation window (iteration 4) by 2 processes" in result.stderr
    assert "cannot continue on 1" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.pth"))
