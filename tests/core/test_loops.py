"""Train loops: how many iterations, epochs and validations a config gives."""

import pytest
from conftest import tiny_cfg

from trainyard import CheckpointError
from trainyard.runner import Runner


def count_validations(runner):
    calls = []
    original = runner.val_loop.run

    def counted():
        calls.append(runner.iter)
        return original()

    runner.val_loop.run = counted
    return calls


def build_for_training(runner):
    """Build the loops as ``train()`` does, so the val loop can be observed, then train."""
    validations = []
    original_build = runner._build_loop

    def build(split):
        loop = original_build(split)
        if split == "val":
            run = loop.run
            loop.run = lambda: (validations.append(runner.iter), run())[1]
        return loop

    runner._build_loop = build
    runner.train()
    return validations


def test_epoch_based_loop_counts_and_val_interval(tmp_path):
    # 24 samples / batch 4 = 6 iterations per epoch; validate every 2 epochs and at the end
    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=3", "train_cfg.val_interval=2"))
    validations = build_for_training(runner)
    assert (runner.epoch, runner.iter, runner.max_iters) == (3, 18, 18)
    assert validations == [12, 18]


def test_epoch_based_val_begin_skips_early_validation(tmp_path):
    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=3", "train_cfg.val_begin=3"))
    assert build_for_training(runner) == [18]


def test_iteration_based_loop_cycles_the_dataloader(tmp_path):
    cfg = tiny_cfg(tmp_path, train_cfg=dict(type="IterBasedTrainLoop", max_iters=14, val_interval=4), param_scheduler=[])
    runner = Runner.from_cfg(cfg)
    epochs_seen = []
    sampler = runner.train_dataloader.sampler
    original_set_epoch = sampler.set_epoch
    sampler.set_epoch = lambda epoch: (epochs_seen.append(epoch), original_set_epoch(epoch))
    validations = build_for_training(runner)
    assert runner.iter == 14 and runner.epoch == 2  # 14 iterations of 6 per epoch
    assert epochs_seen[-3:] == [0, 1, 2]
    assert validations == [4, 8, 12, 14]


def test_loop_registered_outside_core_replaces_the_train_loop_through_config(tmp_path):
    cfg = tiny_cfg(tmp_path, train_cfg=dict(type="HalfStepsLoop", max_iters=8, val_interval=100), param_scheduler=[])
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert type(runner.train_loop).__name__ == "HalfStepsLoop"
    assert runner.iter == 4
    log_text = (runner.run_dir / f"{runner.run_dir.name}.log").read_text()
    assert "HalfStepsLoop runs 4 of 8 iterations" in log_text


def test_early_stopping_ends_training(tmp_path):
    cfg = tiny_cfg(
        tmp_path,
        "train_cfg.max_epochs=10",
        "optim_wrapper.optimizer.lr=0.0",
        custom_hooks=[dict(type="EarlyStoppingHook", monitor="accuracy", patience=2)],
        param_scheduler=[],
    )
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.epoch == 3  # no improvement with lr 0: best at epoch 1, then 2 epochs of patience


def test_resume_with_another_number_of_iterations_per_epoch_is_refused(tmp_path):
    no_val = ["val_dataloader=None", "val_cfg=None", "val_evaluator=None", "default_hooks.checkpoint.save_best=None"]
    Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1", *no_val)).train()  # 24 samples, batches of 4
    bigger_batches = tiny_cfg(tmp_path, "train_cfg.max_epochs=2", "train_dataloader.batch_size=8", *no_val, resume="auto")
    with pytest.raises(CheckpointError, match="saved with 6 iterations per epoch, this run has 3 "):
        Runner.from_cfg(bigger_batches).train()


@pytest.mark.parametrize("loop_type, expected", [("EpochBasedTrainLoop", 5), ("IterBasedTrainLoop", 10)])
def test_another_number_of_processes_continues_at_the_same_place_in_the_epoch(loop_type, expected, trainyard_log):
    """Saved by 2 processes at iteration 10 (6 per epoch: epoch 1, batch 4); on one process that is epoch 1, batch 2 of 3."""
    import logging
    from types import SimpleNamespace

    from trainyard import loops

    runner = SimpleNamespace(world_size=1, logger=logging.getLogger("trainyard"))
    limit = {"EpochBasedTrainLoop": {"max_epochs": 4}, "IterBasedTrainLoop": {"max_iters": 20}}[loop_type]
    loop = getattr(loops, loop_type)(runner, dataloader=[0, 1, 2], **limit)
    loop.load_state_dict({"iter": 10, "iters_per_epoch": 6, "world_size": 2})
    assert loop.iter == expected
    assert (f"saved by 2 processes at iteration 10 (6 per epoch); on 1 an epoch has 3, so training continues at "
            f"iteration {expected}") in trainyard_log.text


@pytest.mark.parametrize("batch_size, sampler, outcome", [
    (4, "default", 8),
    (3, "default", "takes 3 samples per iteration, which does not divide 8"),
    (4, "sequential", "uses a sampler whose order depends on the number of processes"),
])
def test_a_mid_epoch_position_carries_over_to_another_world_size_by_samples_or_is_refused(batch_size, sampler, outcome):
    """Saved by 2 processes x batch 4 at iteration 4 (3 per epoch): 8 samples into epoch 2."""
    import logging
    from types import SimpleNamespace

    import torch

    from trainyard import loops
    from trainyard.samplers import DefaultSampler

    runner = SimpleNamespace(world_size=1, logger=logging.getLogger("trainyard"))
    data = list(range(24))
    chosen = DefaultSampler(data, seed=0) if sampler == "default" else torch.utils.data.SequentialSampler(data)
    loop = loops.EpochBasedTrainLoop(runner, torch.utils.data.DataLoader(data, batch_size=batch_size, sampler=chosen), max_epochs=3)
    saved = {"iter": 4, "iters_per_epoch": 3, "world_size": 2, "samples_in_epoch": 8}
    if isinstance(outcome, int):
        loop.load_state_dict(saved)
        assert loop.iter == outcome and loop.state_dict()["samples_in_epoch"] == 8
    else:
        with pytest.raises(CheckpointError, match=outcome):
            loop.load_state_dict(saved)
