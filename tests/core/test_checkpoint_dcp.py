"""Sharded checkpoints in one process: DCP directories resume exactly, are made atomic, and are read only when ours."""

import fcntl
import shutil

import pytest
import torch
from conftest import assert_same_weights, run_trainyard, tiny_cfg

from trainyard.checkpoint import read_full_checkpoint, remove_stale_temporaries, resume_source
from trainyard.checkpoint_dcp import DcpWriter, load_into
from trainyard.errors import CheckpointError, CheckpointWriteError
from trainyard.hooks import HookDispatcher
from trainyard.runner import Runner
from trainyard.training_state import TrainingState

TINY = "tests/configs/tiny.py"
DCP = ["default_hooks.checkpoint.save_format='dcp'", "model.dropout=0.3", "custom_hooks=[dict(type='EMAHook', momentum=0.2)]",
       "optim_wrapper.optimizer=dict(_delete_=True, type='AdamW', lr=0.01)"]


def train(work_dir, *options, **values):
    runner = Runner.from_cfg(tiny_cfg(work_dir, *DCP, *options, **values))
    runner.train()
    return runner


@pytest.fixture(scope="module")
def dcp_run(tmp_path_factory):
    """The tiny config for 3 epochs with DCP checkpoints (keep 2, and the best)."""
    work_dir = tmp_path_factory.mktemp("dcp_run")
    return work_dir, {k: v.clone() for k, v in train(work_dir).state_dict()["state_dict"].items()}


def test_keep_last_n_best_and_pointer_work_with_directories(dcp_run):
    work_dir, _ = dcp_run
    names = sorted(p.name for p in work_dir.iterdir() if p.name.endswith(".dcp"))
    assert names[-2:] == ["epoch_2.dcp", "epoch_3.dcp"] and len(names) == 3 and names[0].startswith("best_accuracy_epoch_")
    assert (work_dir / "last_checkpoint").read_text() == str((work_dir / "epoch_3.dcp").resolve())
    assert not [p for p in work_dir.iterdir() if ".tmp-" in p.name]
    assert (work_dir / "epoch_3.dcp" / "trainyard_checkpoint.pth").is_file()


def test_a_run_resumed_from_a_dcp_directory_ends_with_identical_weights(dcp_run, tmp_path):
    _, uninterrupted = dcp_run
    train(tmp_path, "train_cfg.max_epochs=1")
    resumed = train(tmp_path, resume="auto")
    assert_same_weights(uninterrupted, resumed.state_dict()["state_dict"], "resumed from epoch_1.dcp")


def test_a_directory_no_trainyard_run_wrote_is_never_resumed_from(dcp_run, tmp_path):
    import torch.distributed.checkpoint as dcp

    foreign = tmp_path / "iter_3.dcp"
    dcp.save({"state_dict": {"w": torch.ones(2)}}, checkpoint_id=str(foreign))
    with pytest.raises(CheckpointError, match="no trainyard run wrote.*trainyard reads .*only its own DCP directories"):
        resume_source(str(foreign), tmp_path)


def test_load_from_a_dcp_directory_is_refused_in_one_line(dcp_run):
    work_dir, _ = dcp_run
    result = run_trainyard("test", TINY, str(work_dir / "epoch_3.dcp"), "--work-dir", str(work_dir))
    assert result.returncode == 2
    assert "is a sharded (DCP) checkpoint directory" in result.stderr and "trainyard convert-checkpoint" in result.stderr
    assert "Traceback" not in result.stderr
    from trainyard.hooks.checkpoint import _PERIODIC

    suggested = "epoch_3_consolidated.pth"  # a name max_keep_ckpts never prunes (epoch_3.pth it would)
    assert f"--out {work_dir / suggested}" in result.stderr and not _PERIODIC.match(suggested)


def test_convert_checkpoint_never_overwrites_the_checkpoint_or_an_existing_file_without_force(dcp_run, tmp_path):
    work_dir, _ = dcp_run
    source = work_dir / "epoch_3.dcp"
    marker = (source / "trainyard_checkpoint.pth").read_bytes()
    inside = run_trainyard("convert-checkpoint", str(source), "--out", str(source / "trainyard_checkpoint.pth"))
    assert inside.returncode == 2 and "inside the checkpoint directory" in inside.stderr and "Traceback" not in inside.stderr
    assert (source / "trainyard_checkpoint.pth").read_bytes() == marker
    existing = tmp_path / "epoch_3.pth"
    existing.write_bytes(b"a full training checkpoint")
    refused = run_trainyard("convert-checkpoint", str(source), "--out", str(existing))
    assert refused.returncode == 2 and "exists already" in refused.stderr and "--force" in refused.stderr
    assert existing.read_bytes() == b"a full training checkpoint"
    forced = run_trainyard("convert-checkpoint", str(source), "--out", str(existing), "--force")
    assert forced.returncode == 0, forced.stderr
    assert read_full_checkpoint(existing)["meta"]["iter"] == 18


@pytest.mark.parametrize("damage", ["missing", "cut"])
def test_a_dcp_directory_with_a_missing_or_cut_shard_is_skipped_by_auto_resume_and_refused_in_one_line(dcp_run, tmp_path, damage):
    from trainyard.checkpoint import newest_intact_checkpoint

    work_dir, _ = dcp_run
    copy = tmp_path / "copy"
    shutil.copytree(work_dir, copy, ignore=shutil.ignore_patterns("2026*"))
    shard = next((copy / "epoch_3.dcp").glob("*.distcp"))
    if damage == "missing":
        shard.unlink()
    else:
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"epoch_3.dcp is incomplete: its shard file .*(missing|cut short)"):
        read_full_checkpoint(copy / "epoch_3.dcp")
    source, notes = resume_source("auto", copy)
    assert source.path.name != "epoch_3.dcp" and any(n.startswith("skipped epoch_3.dcp:") and "incomplete" in n for n in notes)
    assert newest_intact_checkpoint(copy).name != "epoch_3.dcp"


def test_a_damaged_shard_is_one_checkpoint_error_naming_the_directory(dcp_run, tmp_path):
    work_dir, _ = dcp_run
    shutil.copytree(work_dir / "epoch_3.dcp", tmp_path / "epoch_3.dcp")
    shard = next((tmp_path / "epoch_3.dcp").glob("*.distcp"))
    shard.write_bytes(bytes(shard.stat().st_size))  # as long as it should be, but zeros
    with pytest.raises(CheckpointError, match=r"epoch_3.dcp could not be read"):
        read_full_checkpoint(tmp_path / "epoch_3.dcp")


class _RunsCode:
    """Unpickles into a call of ``os.system``: what a crafted ``.metadata`` would hold."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def test_a_crafted_metadata_in_a_directory_with_our_marker_runs_no_code(dcp_run, tmp_path):
    import pickle

    work_dir, _ = dcp_run
    crafted = tmp_path / "epoch_3.dcp"
    shutil.copytree(work_dir / "epoch_3.dcp", crafted)
    ran = tmp_path / "code_ran"
    (crafted / ".metadata").write_bytes(pickle.dumps(_RunsCode(f"touch {ran}")))
    with pytest.raises(CheckpointError, match=r"refers to (posix|os)\.system.*unpickling it could run code"):
        read_full_checkpoint(crafted)
    result = run_trainyard("convert-checkpoint", str(crafted), "--out", str(tmp_path / "out.pth"))
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert not ran.exists() and not (tmp_path / "out.pth").exists()


def test_convert_checkpoint_writes_a_file_predictor_and_test_load(dcp_run, tmp_path):
    from trainyard.inference import Predictor

    work_dir, weights = dcp_run
    result = run_trainyard("convert-checkpoint", str(work_dir / "epoch_3.dcp"), "--out", str(tmp_path / "epoch_3.pth"))
    assert result.returncode == 0, result.stderr
    converted = read_full_checkpoint(tmp_path / "epoch_3.pth")
    assert converted["meta"]["iter"] == 18 and converted["meta"]["weights"] == "ema"
    predictor = Predictor.from_run(tmp_path / "epoch_3.pth")
    assert_same_weights(converted["state_dict"], predictor.model.state_dict(), "convert-checkpoint")
    assert_same_weights(converted["state_dict"], Predictor.from_run(work_dir / "epoch_3.dcp").model.state_dict(), "Predictor on the directory")
    assert Predictor.from_run(work_dir).checkpoint_path.name.startswith("best_accuracy_epoch_")  # a work dir: its best directory


def test_last_checkpoint_names_the_directory_and_auto_resume_takes_it(dcp_run, tmp_path):
    from trainyard.checkpoint import last_checkpoint

    work_dir, _ = dcp_run
    shutil.copytree(work_dir, tmp_path / "copy", ignore=shutil.ignore_patterns("2026*"))
    assert last_checkpoint(tmp_path / "copy") == tmp_path / "copy" / "epoch_3.dcp"
    source, notes = resume_source("auto", tmp_path / "copy")
    assert source.path.name == "epoch_3.dcp" and source.sharded and notes == [f"resuming from {source.path}"]


def _model_and_optimizer(seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    from trainyard.optim import OptimWrapper

    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=0.1), torch.device("cpu"))
    return model, wrapper


class _Loop:
    iter, epoch = 3, 0

    def state_dict(self):
        return {"iter": self.iter}

    def load_state_dict(self, state):
        self.iter = state["iter"]


def _state(model, wrapper):
    return TrainingState(model, wrapper, [], _Loop(), HookDispatcher(), lambda: {"iter": 3, "epoch": 0, "world_size": 1})


def test_optimizer_state_comes_back_although_gradients_are_present_when_loading(tmp_path):
    """pytorch#140898: with gradients present, torch's loader initialises no optimizer state and restores nothing."""
    model, wrapper = _model_and_optimizer(0)
    for _ in range(2):
        wrapper.update_params(model(torch.randn(5, 4)).square().mean())
    DcpWriter(tmp_path).save(_state(model, wrapper).sharded(), "iter_3.dcp")
    fresh_model, fresh_wrapper = _model_and_optimizer(1)
    fresh_model(torch.randn(5, 4)).sum().backward()  # gradients present, optimizer state still empty
    state = _state(fresh_model, fresh_wrapper)
    state.load(load_into(state.sharded_template(), tmp_path / "iter_3.dcp"), "iter_3.dcp")
    assert len(fresh_wrapper.optimizer.state) == 4
    assert_same_weights(model.state_dict(), fresh_model.state_dict(), "model")
    for saved, loaded in zip(wrapper.optimizer.state.values(), fresh_wrapper.optimizer.state.values()):
        assert all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_a_dcp_checkpoint_of_other_shapes_is_one_line_naming_the_mismatches(tmp_path):
    model, wrapper = _model_and_optimizer(0)
    DcpWriter(tmp_path).save(_state(model, wrapper).sharded(), "iter_3.dcp")
    other = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    from trainyard.optim import OptimWrapper

    state = _state(other, OptimWrapper(torch.optim.AdamW(other.parameters(), lr=0.1), torch.device("cpu")))
    with pytest.raises(CheckpointError, match=r"iter_3.dcp does not fit the model \(3 shape mismatches\): 0.weight: checkpoint \(8, 4\) vs model \(16, 4\)"):
        load_into(state.sharded_template(), tmp_path / "iter_3.dcp")


def test_a_failed_dcp_save_leaves_the_previous_checkpoint_and_no_temporary(tmp_path, monkeypatch):
    import torch.distributed.checkpoint as dcp

    model, wrapper = _model_and_optimizer(0)
    writer = DcpWriter(tmp_path)
    writer.save(_state(model, wrapper).sharded(), "iter_3.dcp")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dcp, "save", full_disk)
    with pytest.raises(CheckpointWriteError, match="No space left on device; earlier checkpoints are untouched"):
        writer.save(_state(model, wrapper).sharded(), "iter_6.dcp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter_3.dcp", "last_checkpoint"]
    assert read_full_checkpoint(tmp_path / "iter_3.dcp")["meta"]["iter"] == 3


def test_a_temporary_directory_is_removed_exactly_when_its_writer_is_gone(tmp_path):
    model, wrapper = _model_and_optimizer(0)
    DcpWriter(tmp_path).save(_state(model, wrapper).sharded(), "iter_3.dcp")
    for name in (".iter_6.dcp.tmp-host-11", ".iter_9.dcp.tmp-host-12"):
        shutil.copytree(tmp_path / "iter_3.dcp", tmp_path / name)
        (tmp_path / name / ".trainyard-writing").touch()
    with open(tmp_path / ".iter_9.dcp.tmp-host-12" / ".trainyard-writing", "r+b") as live:
        fcntl.flock(live.fileno(), fcntl.LOCK_EX)  # a save still under way elsewhere
        removed = remove_stale_temporaries(tmp_path)
    assert len(removed) == 1 and ".iter_6.dcp.tmp-host-11" in removed[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".iter_9.dcp.tmp-host-12", "iter_3.dcp", "last_checkpoint"]
