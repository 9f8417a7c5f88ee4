"""CheckpointHook policy: which files are written, which are kept, whatever interrupts the run."""

import json

from conftest import run_trainyard, tiny_cfg

from trainyard.checkpoint import read_checkpoint
from trainyard.runner import Runner

# 24 samples / batch 4 = 6 iterations per epoch; 4 epochs = 24 iterations
KEEP_TWO_AND_BEST = [
    "train_cfg.max_epochs=4",
    "default_hooks.checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False, max_keep_ckpts=2, save_best='accuracy')",
]
# Ten interruptions across the run: plain kills, kills inside a save (leaving a temporary
# file), and kills between a save and the pointer update.
KILLS = [[3, "iter"], [6, "save"], [8, "pointer"], [9, "iter"], [10, "save"], [12, "pointer"],
         [14, "iter"], [16, "save"], [19, "iter"], [22, "pointer"]]


def periodic_names(work_dir):
    return sorted(p.name for p in work_dir.glob("*.pth") if p.name.startswith(("epoch_", "iter_")))


def test_ten_interrupted_and_resumed_runs_keep_two_periodic_one_best_and_no_temporary_file(tmp_path):
    work_dir = tmp_path / "work"
    kill_hook = f"custom_hooks=[dict(type='KillScheduleHook', kills={KILLS}, marker_dir='{tmp_path}/markers')]"
    for attempt in range(len(KILLS) + 1):
        result = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(work_dir), "--resume",
                               "--cfg-options", *KEEP_TWO_AND_BEST, kill_hook)
        if result.returncode == 0:
            break
        assert result.returncode == -9, result.stderr[-3000:]
    assert attempt == len(KILLS), "every planned kill happened once, then the run finished"
    assert len(list((tmp_path / "markers").iterdir())) == len(KILLS)
    names = sorted(p.name for p in work_dir.iterdir() if p.is_file())
    periodic = [n for n in names if n.startswith("iter_")]
    best = [n for n in names if n.startswith("best_")]
    assert periodic == ["iter_22.pth", "iter_24.pth"], names
    assert len(best) == 1, names
    assert [n for n in names if ".tmp-" in n] == []
    assert read_checkpoint(work_dir / "iter_24.pth")["meta"]["iter"] == 24


def test_best_checkpoint_holds_the_best_score_of_all_validations(tmp_path):
    runner = Runner.from_cfg(tiny_cfg(tmp_path, *KEEP_TWO_AND_BEST, "val_evaluator=dict(type='ToyMeanLoss')",
                                      "default_hooks.checkpoint.save_best='mean_loss'"))
    runner.train()
    records = [json.loads(line) for line in (runner.run_dir / "scalars.jsonl").read_text().splitlines()]
    scores = [r["val/mean_loss"] for r in records if "val/mean_loss" in r]
    (best,) = tmp_path.glob("best_*.pth")
    assert len(scores) == 4
    assert read_checkpoint(best)["hooks"]["CheckpointHook"]["best_score"] == min(scores)


def test_a_stop_in_the_middle_of_an_epoch_saves_an_iteration_checkpoint_and_keeps_the_epoch_one(tmp_path):
    runner = Runner.from_cfg(tiny_cfg(
        tmp_path, "default_hooks.checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=True, max_keep_ckpts=3)",
        custom_hooks=[dict(type="StopAtIterHook", iteration=8)],
    ))
    runner.train()
    assert periodic_names(tmp_path) == ["epoch_1.pth", "iter_8.pth"]
    assert read_checkpoint(tmp_path / "epoch_1.pth")["meta"]["iter"] == 6
    assert read_checkpoint(tmp_path / "iter_8.pth")["meta"]["iter"] == 8
    assert (tmp_path / "last_checkpoint").read_text().endswith("iter_8.pth")


def test_keep_n_counts_epoch_and_iteration_checkpoints_together_in_training_order(tmp_path):
    stopped = tiny_cfg(tmp_path, "default_hooks.checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2)",
                       custom_hooks=[dict(type="StopAtIterHook", iteration=8)])
    Runner.from_cfg(stopped).train()  # epoch_1.pth, then iter_8.pth at the stop
    resumed = tiny_cfg(tmp_path, "default_hooks.checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2)", resume="auto")
    Runner.from_cfg(resumed).train()
    assert periodic_names(tmp_path) == ["epoch_2.pth", "epoch_3.pth"]


def test_two_hooks_of_the_same_class_keep_their_own_state_through_a_resume(tmp_path):
    hooks = [dict(type="EarlyStoppingHook", monitor="accuracy", rule="greater", patience=9),
             dict(type="EarlyStoppingHook", monitor="accuracy", rule="less", patience=9)]
    Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=3", custom_hooks=hooks)).train()
    saved = read_checkpoint(tmp_path / "epoch_3.pth")["hooks"]  # written after two validations
    first, second = saved["EarlyStoppingHook"], saved["EarlyStoppingHook#2"]
    assert first["best"] > second["best"]

    again = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=3", custom_hooks=hooks, resume=str(tmp_path / "epoch_3.pth")))
    again.train()  # resumes at the end: nothing left to train
    loaded = [h for h in again.hooks if type(h).__name__ == "EarlyStoppingHook"]
    assert [(h.best, h.waited) for h in loaded] == [(first["best"], first["waited"]), (second["best"], second["waited"])]


def test_a_checkpoint_from_before_per_instance_keys_still_loads(tmp_path):
    from trainyard.hooks import HookDispatcher
    from trainyard.hooks.early_stopping import EarlyStoppingHook

    first, second = EarlyStoppingHook("accuracy"), EarlyStoppingHook("accuracy", rule="less")
    dispatcher = HookDispatcher([first, second])
    dispatcher.load_state_dict({"EarlyStoppingHook": {"best": 0.75, "waited": 2}})
    assert (first.best, first.waited) == (0.75, 2)
    assert (second.best, second.waited) == (float("inf"), 0)


def test_a_resumed_run_removes_the_checkpoint_it_resumed_from_when_it_falls_out_of_the_kept_set(tmp_path):
    options = ["train_cfg.max_epochs=1", "default_hooks.checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False, max_keep_ckpts=2)",
               "val_dataloader=None", "val_cfg=None", "val_evaluator=None"]
    Runner.from_cfg(tiny_cfg(tmp_path, *options, custom_hooks=[dict(type="StopAtIterHook", iteration=3)])).train()
    assert periodic_names(tmp_path) == ["iter_2.pth", "iter_3.pth"]
    Runner.from_cfg(tiny_cfg(tmp_path, *options, resume="auto")).train()
    assert periodic_names(tmp_path) == ["iter_5.pth", "iter_6.pth"]
    assert read_checkpoint(tmp_path / "iter_6.pth")["loop"]["iter"] == 6
