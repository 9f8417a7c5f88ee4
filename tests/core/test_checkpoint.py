"""Checkpoints: atomic writes, safe loading, exact resume, foreign weights, bad files."""

import contextlib
import json
import re

import pytest
import torch
from conftest import assert_same_weights, final_weights, run_trainyard, tiny_cfg, train_cli

from trainyard import CheckpointError
from trainyard.errors import NonFiniteError
from trainyard.hooks import Hook
from trainyard.checkpoint import _temporary_path, atomic_save, read_checkpoint, remove_stale_temporaries, resume_source
from trainyard.runner import Runner


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny config trained for 4 epochs, keeping the last 2 checkpoints and the best."""
    work_dir = tmp_path_factory.mktemp("trained")
    runner = Runner.from_cfg(tiny_cfg(work_dir, "train_cfg.max_epochs=4", custom_hooks=[dict(type="EMAHook", momentum=0.1)]))
    runner.train()
    return work_dir


def test_keep_last_n_and_keep_best(trained):
    names = sorted(p.name for p in trained.glob("*.pth"))
    periodic = [n for n in names if n.startswith("epoch_")]
    best = [n for n in names if n.startswith("best_")]
    assert periodic == ["epoch_3.pth", "epoch_4.pth"]
    assert len(best) == 1 and best[0].startswith("best_accuracy_epoch_")
    assert not list(trained.glob(".*tmp*"))


def test_last_checkpoint_names_the_newest_file(trained):
    newest = max(trained.glob("*.pth"), key=lambda p: p.stat().st_mtime_ns)
    assert (trained / "last_checkpoint").read_text().strip() == str(newest.resolve())


def test_every_part_round_trips_with_weights_only(trained):
    state = torch.load(trained / "epoch_4.pth", weights_only=True)
    assert set(state) == {"meta", "state_dict", "optimizer", "schedulers", "hooks", "loop", "rng"}
    meta = state["meta"]
    assert (meta["epoch"], meta["iter"], meta["seed"], meta["world_size"]) == (4, 24, 0, 1)
    assert "ToyNet" in meta["config"] and isinstance(meta["torch_version"], str)
    assert set(state["state_dict"]) == {"conv.weight", "conv.bias", "head.weight", "head.bias"}
    assert state["optimizer"]["state"]["state"][0]["momentum_buffer"].shape == state["state_dict"]["conv.weight"].shape
    assert set(state["hooks"]) == {"EMAHook", "CheckpointHook"}
    assert set(state["hooks"]["EMAHook"]["training_weights"]) == set(state["state_dict"])
    assert state["meta"]["weights"] == "ema"
    assert state["loop"]["iter"] == 24
    assert set(state["rng"][0]) >= {"torch", "numpy", "python"}


class _Exploit:
    """Unpickling this would create a file: proof that loading executed code."""

    target = ""

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickled_object_is_refused_without_being_executed(tmp_path):
    _Exploit.target = str(tmp_path / "pwned")
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "payload": _Exploit()}, path)
    with pytest.raises(CheckpointError, match="refuses it.*TRAINYARD_SAFE_GLOBALS"):
        read_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_a_failed_write_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    path = tmp_path / "epoch_1.pth"
    atomic_save({"value": torch.tensor([1.0])}, path)

    def write_half_then_fail(obj, file, *args, **kwargs):
        file.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", write_half_then_fail)
    with pytest.raises(CheckpointError, match="No space left on device.*earlier checkpoints are untouched"):
        atomic_save({"value": torch.tensor([2.0])}, path)
    monkeypatch.undo()
    assert torch.equal(read_checkpoint(path)["value"], torch.tensor([1.0]))
    assert [p.name for p in tmp_path.iterdir()] == ["epoch_1.pth"]


def test_a_process_killed_while_saving_leaves_the_previous_checkpoint(tmp_path):
    """A real SIGKILL in the middle of ``torch.save``: the old file and pointer survive."""
    script = f"""
import os, signal, torch
from pathlib import Path
from trainyard.checkpoint import atomic_save, _write_last_checkpoint
work = Path({str(tmp_path)!r})
good = atomic_save({{'value': torch.tensor([1.0])}}, work / 'iter_1.pth')
_write_last_checkpoint(work, good)
original = torch.serialization._save
def dying_save(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
torch.serialization._save = dying_save
atomic_save({{'value': torch.zeros(1000)}}, work / 'iter_1.pth')
"""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == -9
    assert torch.equal(read_checkpoint(tmp_path / "iter_1.pth")["value"], torch.tensor([1.0]))
    assert (tmp_path / "last_checkpoint").read_text() == str((tmp_path / "iter_1.pth").resolve())


# exact resume ---------------------------------------------------------------------------

def killed_and_resumed(work_dir, kill_at, *extra):
    kill = f"custom_hooks=[dict(type='KillAtIterHook', iteration={kill_at}, marker='{work_dir}/killed')]"
    first = train_cli(work_dir, kill, *extra)
    assert first.returncode == -9, first.stderr
    second = train_cli(work_dir, kill, "resume=auto", *extra)
    assert second.returncode == 0, second.stderr
    return second


def scalar_records(work_dir):
    (run_dir,) = [p for p in work_dir.iterdir() if p.is_dir()]
    return [json.loads(line) for line in (run_dir / "scalars.jsonl").read_text().splitlines()]


def test_run_killed_mid_epoch_resumes_to_identical_weights(uninterrupted, tmp_path):
    resumed = killed_and_resumed(tmp_path, kill_at=7)  # last checkpoint at iteration 4, epoch 1 of 6 iterations
    assert "resumed from" in resumed.stdout and "iteration 4" in resumed.stdout
    assert_same_weights(final_weights(uninterrupted), final_weights(tmp_path))


def test_resume_with_two_workers_matches_a_single_process_run(uninterrupted, tmp_path):
    killed_and_resumed(tmp_path, 10, "train_dataloader.num_workers=2")
    assert_same_weights(final_weights(uninterrupted), final_weights(tmp_path))


def test_learning_rate_continues_exactly_when_resumed_inside_warmup(uninterrupted, tmp_path):
    killed_and_resumed(tmp_path, kill_at=6)  # warm-up lasts 10 iterations; resumed at 4
    expected = {r["step"]: r["train/lr"] for r in scalar_records(uninterrupted)}
    records = scalar_records(tmp_path)
    steps = [r["step"] for r in records]
    assert steps == [1, 2, 3, 4, 5, 6] + list(range(5, 19))  # one history, continued in the same file
    for record in records:
        assert record["train/lr"] == expected[record["step"]]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_run_with_the_seed_unset_resumes_with_the_seed_it_drew(tmp_path, workers):
    """The shipped configs leave ``randomness.seed`` unset: the resumed run must keep the first attempt's drawn seed."""
    import random

    kill_at = random.Random(23 + workers).choice([i for i in range(5, 18) if i % 6])  # inside an epoch, after a save
    options = ["randomness.seed=None", f"train_dataloader.num_workers={workers}"]
    resumed = killed_and_resumed(tmp_path / "killed", kill_at, *options)
    (log,) = (tmp_path / "killed").glob("*/*.log")
    drawn = int(re.search(r"; seed (\d+);", log.read_text()).group(1))  # the first attempt's line comes first
    reference = train_cli(tmp_path / "reference", *options[1:], f"randomness.seed={drawn}")
    assert reference.returncode == 0, reference.stderr
    assert_same_weights(final_weights(tmp_path / "reference"), final_weights(tmp_path / "killed"))
    assert f"seed {drawn}: the seed of the run this resumes" in resumed.stdout


def test_an_explicit_seed_that_differs_from_the_resumed_runs_is_overridden_with_a_warning(tmp_path):
    killed_and_resumed(tmp_path, 7)
    result = train_cli(tmp_path, "resume=auto", "randomness.seed=5", "train_cfg.max_epochs=4")
    assert result.returncode == 0, result.stderr
    assert "randomness.seed=5 differs from seed 0 of the run being resumed; continuing with 0" in result.stdout
    assert read_checkpoint(tmp_path / "iter_24.pth")["meta"]["seed"] == 0


# loading weights and bad files ------------------------------------------------------------


def toy_state():
    from toy_components import ToyNet

    return ToyNet(num_classes=3, channels=4).state_dict()


def test_torchvision_style_state_dict_loads_with_renamed_keys(tmp_path, caplog):
    weights = {f"module.{k}": v + 1 for k, v in toy_state().items()}
    path = tmp_path / "tv.pth"
    torch.save(weights, path)
    runner = Runner.from_cfg(tiny_cfg(tmp_path, load_from=str(path)))
    from trainyard.checkpoint import load_weights

    load_weights(runner, str(path))
    loaded = runner.unwrapped_model.state_dict()
    for key, value in weights.items():
        assert torch.equal(loaded[key.removeprefix("module.")], value)


def test_openmmlab_checkpoint_loads_and_reports_missing_and_unexpected(tmp_path, capsys):
    weights = toy_state()
    weights.pop("head.bias")
    weights = {f"backbone.{k}": v for k, v in weights.items()}
    weights["backbone.aux.weight"] = torch.zeros(2)
    path = tmp_path / "mm.pth"
    torch.save({"meta": {"epoch": 12, "mmengine_version": "0.10.0"}, "state_dict": weights}, path)
    runner = Runner.from_cfg(tiny_cfg(tmp_path))
    from trainyard.checkpoint import load_weights

    load_weights(runner, {"path": str(path), "revise_keys": [(r"^backbone\.", "")]})
    assert torch.equal(runner.unwrapped_model.state_dict()["conv.weight"], weights["backbone.conv.weight"])
    log_text = capsys.readouterr().out
    assert "missing from" in log_text and "head.bias" in log_text
    assert "the model does not have (1): aux.weight" in log_text


def checkpoint_missing_a_key(tmp_path):
    weights = toy_state()
    weights.pop("head.bias")
    path = tmp_path / "partial.pth"
    torch.save(weights, path)
    return path


def test_test_command_refuses_a_checkpoint_missing_keys(tmp_path):
    path = checkpoint_missing_a_key(tmp_path)
    result = run_trainyard("test", "tests/configs/tiny.py", str(path), "--work-dir", str(tmp_path / "work"))
    assert_refused(result, "partial.pth does not match the model", "missing keys ['head.bias']", "--non-strict")


def test_val_command_with_non_strict_evaluates_a_deliberately_partial_checkpoint(tmp_path):
    path = checkpoint_missing_a_key(tmp_path)
    result = run_trainyard("val", "tests/configs/tiny.py", str(path), "--non-strict", "--work-dir", str(tmp_path / "work"),
                           "--out", str(tmp_path / "val.json"))
    assert result.returncode == 0, result.stderr
    assert "keys of the model missing from" in result.stdout + result.stderr
    assert "accuracy" in json.loads((tmp_path / "val.json").read_text())


def assert_refused(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture
def existing_run(trained, tmp_path):
    """A copy of a trained work dir, with the bytes of its files, to prove nothing is overwritten."""
    import shutil

    work_dir = tmp_path / "existing"
    shutil.copytree(trained, work_dir)
    pointer = work_dir / "last_checkpoint"
    pointer.write_text(pointer.read_text().replace(str(trained), str(work_dir)))
    return work_dir, {p: p.read_bytes() for p in work_dir.glob("*") if p.is_file()}


def assert_untouched(existing):
    work_dir, before = existing
    assert {p: p.read_bytes() for p in work_dir.glob("*") if p.is_file()} == before


def test_missing_checkpoint_path(existing_run):
    result = run_trainyard("test", "tests/configs/tiny.py", str(existing_run[0] / "nope.pth"), "--work-dir", str(existing_run[0]))
    assert_refused(result, "nope.pth does not exist")
    assert_untouched(existing_run)


def test_truncated_checkpoint(existing_run):
    work_dir = existing_run[0]
    truncated = work_dir.parent / "truncated.pth"
    truncated.write_bytes((work_dir / "epoch_4.pth").read_bytes()[:3000])
    result = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(work_dir), "--resume", str(truncated))
    assert_refused(result, "truncated.pth is incomplete or corrupt")
    assert_untouched(existing_run)


def test_file_that_is_not_a_checkpoint(existing_run):
    work_dir = existing_run[0]
    text = work_dir.parent / "notes.pth"
    text.write_text("these are not weights\n")
    result = run_trainyard("test", "tests/configs/tiny.py", str(text), "--work-dir", str(work_dir))
    assert_refused(result, "notes.pth is not a torch checkpoint")
    assert_untouched(existing_run)


def test_checkpoint_of_a_different_model_names_the_mismatched_keys(existing_run):
    work_dir = existing_run[0]
    result = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(work_dir), "--resume", "auto", "--cfg-options", "model.channels=6")
    assert_refused(result, "does not fit the model", "conv.weight: checkpoint (4, 3, 3, 3) vs model (6, 3, 3, 3)")
    assert_untouched(existing_run)


def test_resume_from_a_weights_only_file_is_refused(existing_run, tmp_path):
    weights = tmp_path / "weights.pth"
    torch.save(toy_state(), weights)
    result = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(existing_run[0]), "--resume", str(weights))
    assert_refused(result, "cannot be resumed from", "use load_from")
    assert_untouched(existing_run)


EMA = "custom_hooks=[dict(type='EMAHook', momentum=0.1)]"  # as the trained run


def test_resuming_another_runs_checkpoint_into_a_work_dir_holding_checkpoints_is_refused(existing_run, trained):
    """Its saves would replace this work dir's ``epoch_4.pth`` and ``last_checkpoint``, and keep-N would prune the rest."""
    result = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(existing_run[0]), "--resume", str(trained / "epoch_3.pth"),
                           "--cfg-options", "train_cfg.max_epochs=4", EMA)
    assert_refused(result, "already holds checkpoints of another run", f"resuming from {trained / 'epoch_3.pth'}, which is outside it",
                   "--resume without a path", "--overwrite")
    assert_untouched(existing_run)


def test_resuming_a_checkpoint_inside_the_work_dir_by_its_path_continues_that_run(existing_run):
    work_dir = existing_run[0]
    result = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(work_dir), "--resume", str(work_dir / "epoch_3.pth"),
                           "--cfg-options", "train_cfg.max_epochs=4", EMA)
    assert result.returncode == 0, result.stderr
    assert f"resumed from {work_dir / 'epoch_3.pth'} at epoch 3" in result.stdout


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    result = run_trainyard(
        "train", "tests/configs/tiny.py", "--work-dir", str(tmp_path), "--cfg-options",
        "train_dataloader.sampler=dict(type='DefaultSampler', shuffle=False)",
        "train_dataloader.dataset.nan_indices=(21,)",  # in the 6th batch of 4
        "default_hooks.checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)",
    )
    assert_refused(result, "NaN or infinite at iteration 6", "iter_4.pth")
    assert (tmp_path / "last_checkpoint").read_text().endswith("iter_4.pth")
    assert not (tmp_path / "iter_6.pth").exists()
    assert torch.isfinite(read_checkpoint(tmp_path / "iter_4.pth")["state_dict"]["conv.weight"]).all()


class NaNRunningVarianceAfterIteration3(Hook):
    """A batch-norm statistic turns NaN while the loss stays finite (training normalises with the batch's own)."""

    priority = "HIGHEST"

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter == 3:
            runner.unwrapped_model.norm.running_var.fill_(float("nan"))


def test_a_non_finite_batch_norm_statistic_is_never_saved(tmp_path):
    runner = Runner.from_cfg(tiny_cfg(
        tmp_path, "model.batch_norm=True", "val_dataloader=None", "val_cfg=None", "val_evaluator=None",
        "default_hooks.checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)",
    ))
    runner.register_hook(NaNRunningVarianceAfterIteration3())
    with pytest.raises(NonFiniteError, match=r"iteration 4 \(norm\.running_var\); iter_4\.pth was not written"):
        runner.train()
    assert (tmp_path / "last_checkpoint").read_text().endswith("iter_2.pth")
    assert not (tmp_path / "iter_4.pth").exists()


class InfiniteMaskBuffer(Hook):
    """Gives the model a buffer that holds infinity by design, as an attention mask does."""

    def before_train(self, runner):
        runner.unwrapped_model.register_buffer("mask", torch.full((2, 2), float("-inf")).triu(1))


def test_a_buffer_holding_infinity_by_design_does_not_stop_saving(tmp_path):
    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1", "model.batch_norm=True"))
    runner.register_hook(InfiniteMaskBuffer())
    runner.train()
    assert torch.isinf(read_checkpoint(tmp_path / "epoch_1.pth")["state_dict"]["mask"]).any()


def test_a_cleaner_running_just_before_the_rename_cannot_take_a_live_save(tmp_path, monkeypatch):
    import os

    import trainyard.checkpoint as storage

    real_replace, removed = os.replace, []

    def clean_then_replace(source, destination):
        removed.extend(remove_stale_temporaries(tmp_path))  # another process starting in the same work dir
        real_replace(source, destination)

    monkeypatch.setattr(storage.os, "replace", clean_then_replace)
    atomic_save({"value": torch.tensor([1.0])}, tmp_path / "iter_2.pth")
    assert removed == [] and torch.equal(read_checkpoint(tmp_path / "iter_2.pth")["value"], torch.tensor([1.0]))


def test_a_foreign_checkpoints_run_dir_cannot_lead_outside_the_work_dir(tmp_path):
    source = tmp_path / "elsewhere"
    Runner.from_cfg(tiny_cfg(source, "train_cfg.max_epochs=1")).train()
    state = read_checkpoint(source / "epoch_1.pth")
    work_dir = tmp_path / "exp"
    state["meta"]["run_dir"] = str(work_dir / "..")
    torch.save(state, tmp_path / "crafted.pth")
    (tmp_path / "config.py").write_text("mine = 1\n")
    runner = Runner.from_cfg(tiny_cfg(work_dir, "train_cfg.max_epochs=2", resume=str(tmp_path / "crafted.pth")))
    runner.train()
    assert runner.run_dir.parent == work_dir and (tmp_path / "config.py").read_text() == "mine = 1\n"


@pytest.mark.parametrize("edit, problem", [
    (lambda s: s["meta"].__setitem__("seed", "abc"), "meta['seed'] is 'abc', not a whole number"),
    (lambda s: s["meta"].__setitem__("seed", 2**80), "not a whole number"),
    (lambda s: s.__setitem__("meta", "x"), "must be dicts"),
    (lambda s: s["loop"].__setitem__("iters_per_epoch", 0), "positive epoch length"),
    (lambda s: s["optimizer"].__setitem__("partial_grads", 5), "must be lists"),
])
def test_a_crafted_resume_state_is_refused_in_one_line(edit, problem, tmp_path):
    Runner.from_cfg(tiny_cfg(tmp_path / "run", "train_cfg.max_epochs=1")).train()
    state = read_checkpoint(tmp_path / "run" / "epoch_1.pth")
    edit(state)
    torch.save(state, tmp_path / "crafted.pth")
    result = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(tmp_path / "new"), "--resume", str(tmp_path / "crafted.pth"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "crafted.pth cannot be resumed from: " in result.stderr and problem in result.stderr


# what a killed run leaves behind ------------------------------------------------------------


def test_temporary_files_of_a_killed_save_are_removed_when_the_next_run_starts(tmp_path):
    import fcntl
    import os

    stale = _temporary_path(tmp_path / "iter_22.pth")  # the writer's own name: this host, this (live) PID, no lock
    stale.write_bytes(bytes(3 * 2**20))
    stale_pointer = tmp_path / f".last_checkpoint.tmp-{os.getpid()}"  # the older name
    stale_pointer.write_text("partial")
    in_progress = tmp_path / ".iter_30.pth.tmp-other_pod-1"
    users_file = tmp_path / ".notes.tmp-backup"
    users_file.write_text("not trainyard's")
    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1"))
    with open(in_progress, "wb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)  # a save in progress: its writer holds the lock
        runner.train()
    assert not stale.exists() and not stale_pointer.exists()
    assert in_progress.exists() and users_file.exists()
    log_text = (runner.run_dir / f"{runner.run_dir.name}.log").read_text()
    assert f"removed {stale.name} (3.0 MiB)" in log_text


@contextlib.contextmanager
def locked_by_another_process(path):
    """``path`` created and held under ``flock`` by a live process, as a writer on another pod would hold it."""
    import subprocess
    import sys

    script = "import fcntl, sys, time; f = open(sys.argv[1], 'wb'); fcntl.flock(f.fileno(), fcntl.LOCK_EX); print('locked', flush=True); time.sleep(120)"
    process = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_temporary_file_is_stale_exactly_when_no_process_holds_its_lock(tmp_path):
    """Containers repeat PIDs and change host names: neither the PID nor the host in the name decides."""
    import os

    alive_pid = _temporary_path(tmp_path / "iter_8.pth")
    other_host = tmp_path / f".iter_9.pth.tmp-pod_7f9c2-{os.getpid()}"
    legacy = tmp_path / ".iter_10.pth.tmp-1"
    for path in (alive_pid, other_host, legacy):
        path.write_bytes(b"PK")
    writing = tmp_path / f".iter_12.pth.tmp-pod_4b1d0-{os.getpid()}"
    with locked_by_another_process(writing):
        removed = remove_stale_temporaries(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == [writing.name]
    assert [line.split()[1] for line in removed] == sorted(p.name for p in (alive_pid, other_host, legacy))
    assert remove_stale_temporaries(tmp_path) == [f"removed {writing.name} (0.0 MiB), left by an interrupted save"]


def test_a_save_in_progress_holds_its_temporary_file_against_removal(tmp_path, monkeypatch):
    seen_during_save = []
    original_save = torch.save

    def save_while_another_run_starts(obj, file, *args, **kwargs):
        original_save(obj, file, *args, **kwargs)
        seen_during_save.append((sorted(p.name for p in tmp_path.iterdir()), remove_stale_temporaries(tmp_path)))

    monkeypatch.setattr(torch, "save", save_while_another_run_starts)
    atomic_save({"value": torch.tensor([1.0])}, tmp_path / "iter_2.pth")
    monkeypatch.undo()
    assert seen_during_save == [([_temporary_path(tmp_path / "iter_2.pth").name], [])]
    assert torch.equal(read_checkpoint(tmp_path / "iter_2.pth")["value"], torch.tensor([1.0]))


def test_without_fcntl_checkpoints_import_save_and_clean_up(tmp_path):
    """Windows has no ``fcntl``: the module still imports, saves, and removes a temporary file nobody has open."""
    import subprocess
    import sys

    script = f"""
import sys
sys.modules['fcntl'] = None  # what Windows has
from pathlib import Path
import torch
from trainyard.checkpoint import atomic_save, read_checkpoint, remove_stale_temporaries
work = Path({str(tmp_path)!r})
(work / '.iter_3.pth.tmp-host-1').write_bytes(b'PK')
atomic_save({{'value': torch.tensor([1.0])}}, work / 'iter_4.pth')
print(remove_stale_temporaries(work), sorted(p.name for p in work.iterdir()), read_checkpoint(work / 'iter_4.pth')['value'].tolist())
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['removed .iter_3.pth.tmp-host-1 (0.0 MiB), left by an interrupted save'] ['iter_4.pth'] [1.0]"


def test_resume_takes_a_complete_checkpoint_written_after_the_pointer_was_last_updated(uninterrupted, tmp_path):
    kill = f"custom_hooks=[dict(type='KillScheduleHook', kills=[[8, 'pointer']], marker_dir='{tmp_path}/markers')]"
    first = train_cli(tmp_path, kill)
    assert first.returncode == -9
    assert (tmp_path / "last_checkpoint").read_text().endswith("iter_4.pth")
    second = train_cli(tmp_path, kill, "resume=auto")
    assert second.returncode == 0, second.stderr
    assert "iter_8.pth" in second.stdout and "newer than" in second.stdout
    assert "at epoch 1, iteration 8" in second.stdout
    assert_same_weights(final_weights(uninterrupted), final_weights(tmp_path))


@pytest.mark.parametrize("with_pointer", [True, False], ids=["with-last_checkpoint", "without"])
def test_auto_resume_takes_the_highest_iteration_of_a_work_dir_copied_without_times(uninterrupted, tmp_path, with_pointer):
    """``cp -r`` without ``-p`` gives each copy a new modification time, in the order the files happened to be copied."""
    import shutil
    import time

    for name in ["last_checkpoint"] * with_pointer + ["iter_18.pth", "iter_16.pth"]:
        shutil.copy(uninterrupted / name, tmp_path / name)
        time.sleep(0.05)  # past the file system's timestamp granularity
    assert (tmp_path / "iter_16.pth").stat().st_mtime_ns > (tmp_path / "iter_18.pth").stat().st_mtime_ns
    source, notes = resume_source("auto", tmp_path)
    assert source.path == tmp_path / "iter_18.pth", notes


ACCUMULATE = ["optim_wrapper.accumulative_counts=3", "custom_hooks=[dict(type='EMAHook', momentum=0.2)]"]


KILL_POINTS_SEED = 7
"""Draws kills after iterations 1, 5, 7, 11 and 17: resumes from 4, 8 and 16, each inside a window of 3.
Set ``TRAINYARD_KILL_SEED`` to try other kill points; a failure names the seed and the points."""


def test_runs_killed_inside_accumulation_windows_resume_to_identical_weights(tmp_path):
    import os
    import random

    reference = train_cli(tmp_path / "reference", *ACCUMULATE)
    assert reference.returncode == 0, reference.stderr
    seed = int(os.environ.get("TRAINYARD_KILL_SEED", KILL_POINTS_SEED))
    kills = sorted(random.Random(seed).sample(range(1, 18), 5))
    drawn = f"killed after iterations {kills}, drawn with TRAINYARD_KILL_SEED={seed}"
    kill = f"custom_hooks=[dict(type='EMAHook', momentum=0.2), dict(type='KillScheduleHook', kills={[[k, 'iter'] for k in kills]}, marker_dir='{tmp_path}/markers')]"
    work_dir = tmp_path / "killed"
    for _ in kills:
        result = train_cli(work_dir, *ACCUMULATE, kill, "resume=auto")
        assert result.returncode == -9, f"{drawn}: {result.stderr[-2000:]}"
    result = train_cli(work_dir, *ACCUMULATE, kill, "resume=auto")
    assert result.returncode == 0, f"{drawn}: {result.stderr[-2000:]}"
    final, expected = read_checkpoint(work_dir / "iter_18.pth"), read_checkpoint(tmp_path / "reference" / "iter_18.pth")
    assert_same_weights(expected["state_dict"], final["state_dict"], drawn)
    assert_same_weights(expected["hooks"]["EMAHook"]["training_weights"], final["hooks"]["EMAHook"]["training_weights"], drawn)


# trusting pickled classes ----------------------------------------------------------------------


@pytest.fixture
def numpy_scalar_checkpoint(tmp_path):
    import numpy as np

    path = tmp_path / "with_numpy.pth"
    torch.save({"state_dict": toy_state(), "best_score": np.float64(0.75)}, path)
    return path


def test_refusals_name_each_class_to_allow_until_the_file_loads(numpy_scalar_checkpoint, monkeypatch):
    suggested = []
    for expected_class in (r"multiarray\.scalar", r"numpy\.dtype", r"numpy\.dtypes\.Float64DType"):
        with pytest.raises(CheckpointError, match=expected_class) as refused:
            read_checkpoint(numpy_scalar_checkpoint)
        suggested.append(str(refused.value).split("TRAINYARD_SAFE_GLOBALS=")[1].split()[0])
        monkeypatch.setenv("TRAINYARD_SAFE_GLOBALS", suggested[-1])  # what the message says to set
    assert read_checkpoint(numpy_scalar_checkpoint)["best_score"] == 0.75
    assert len(suggested[-1].split(",")) == 3


def test_the_documented_numpy_example_loads(numpy_scalar_checkpoint, monkeypatch):
    import re
    from pathlib import Path

    documented = re.search(r"TRAINYARD_SAFE_GLOBALS=(\S+) python", (Path(__file__).parents[2] / "docs/checkpoints.md").read_text()).group(1)
    monkeypatch.setenv("TRAINYARD_SAFE_GLOBALS", documented)
    assert read_checkpoint(numpy_scalar_checkpoint)["best_score"] == 0.75


@pytest.mark.parametrize("name", ["builtins.eval", "os.system", "subprocess.Popen", "builtins.getattr"])
def test_code_running_callables_are_never_allowed(numpy_scalar_checkpoint, monkeypatch, name):
    monkeypatch.setenv("TRAINYARD_SAFE_GLOBALS", name)
    with pytest.raises(CheckpointError, match=f"{name}.*never allowed"):
        read_checkpoint(numpy_scalar_checkpoint)
