"""Checkpoints: atomic writes, safe loading, exact resume, foreign weights, bad files."""

import json

import pytest
import torch
from conftest import assert_same_weights, final_weights, run_trainyard, tiny_cfg, train_cli

from trainyard import CheckpointError
from trainyard.checkpoint import atomic_save, read_checkpoint
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


# what a killed run leaves behind ------------------------------------------------------------


def dead_pid():
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_temporary_files_of_a_killed_save_are_removed_when_the_next_run_starts(tmp_path):
    import os

    stale = tmp_path / f".iter_22.pth.tmp-{dead_pid()}"
    stale.write_bytes(bytes(3 * 2**20))
    stale_pointer = tmp_path / f".last_checkpoint.tmp-{dead_pid()}"
    stale_pointer.write_text("partial")
    in_progress = tmp_path / f".iter_30.pth.tmp-{os.getpid()}"  # a live writer's file stays
    in_progress.write_bytes(b"PK")
    users_file = tmp_path / ".notes.tmp-backup"
    users_file.write_text("not trainyard's")
    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1"))
    runner.train()
    assert not stale.exists() and not stale_pointer.exists()
    assert in_progress.exists() and users_file.exists()
    log_text = (runner.run_dir / f"{runner.run_dir.name}.log").read_text()
    assert f"removed {stale.name} (3.0 MiB)" in log_text


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


ACCUMULATE = ["optim_wrapper.accumulative_counts=3", "custom_hooks=[dict(type='EMAHook', momentum=0.2)]"]


def test_runs_killed_inside_accumulation_windows_resume_to_identical_weights(tmp_path):
    import random

    reference = train_cli(tmp_path / "reference", *ACCUMULATE)
    assert reference.returncode == 0, reference.stderr
    kills = sorted(random.Random().sample(range(1, 18), 5))
    kill = f"custom_hooks=[dict(type='EMAHook', momentum=0.2), dict(type='KillScheduleHook', kills={[[k, 'iter'] for k in kills]}, marker_dir='{tmp_path}/markers')]"
    work_dir = tmp_path / "killed"
    for _ in kills:
        result = train_cli(work_dir, *ACCUMULATE, kill, "resume=auto")
        assert result.returncode == -9, (kills, result.stderr[-2000:])
    result = train_cli(work_dir, *ACCUMULATE, kill, "resume=auto")
    assert result.returncode == 0, (kills, result.stderr[-2000:])
    final, expected = read_checkpoint(work_dir / "iter_18.pth"), read_checkpoint(tmp_path / "reference" / "iter_18.pth")
    assert_same_weights(expected["state_dict"], final["state_dict"]), kills
    assert_same_weights(expected["hooks"]["EMAHook"]["training_weights"], final["hooks"]["EMAHook"]["training_weights"])


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
