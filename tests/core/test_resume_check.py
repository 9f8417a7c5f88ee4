"""``trainyard verify-resume``: a real kill and resume of the user's config, every tensor compared."""

import pytest
import torch
from conftest import QUICK_RUNS, run_trainyard

from trainyard.resume_check import checkpoint_differences, compare_states

TINY = "tests/configs/tiny.py"
NO_VALIDATION = ["val_cfg=None", "val_dataloader=None"]
SINGLE_PROCESS_DATA = ["train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False"]


def sgd_checkpoint(momentum_scale: float = 1.0) -> dict:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2), torch.nn.Linear(2, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(3, 2)).sum().backward()
    optimizer.step()
    state = optimizer.state_dict()
    state["state"][3]["momentum_buffer"] = state["state"][3]["momentum_buffer"] * momentum_scale
    return {"meta": {"iter": 8, "time": "now"}, "state_dict": model.state_dict(), "optimizer": {"state": state}, "rng": [{"python": [1, 2]}]}


def test_the_first_difference_is_named_in_full_with_its_largest_deviation():
    expected, actual = sgd_checkpoint(), sgd_checkpoint(momentum_scale=1.5)
    differences = checkpoint_differences(expected, actual)
    assert len(differences) == 1
    assert str(differences[0]).startswith("optimizer.state.state.3.momentum_buffer differs: max abs diff ")


def test_the_comparison_sees_buffers_rng_values_and_missing_entries_but_not_the_save_time():
    expected = sgd_checkpoint()
    actual = {**expected, "meta": {"iter": 8, "time": "later"}, "rng": [{"python": [1, 3]}],
              "state_dict": {**expected["state_dict"], "1.num_batches_tracked": torch.tensor(7)}}
    del actual["optimizer"]
    assert [str(d) for d in checkpoint_differences(expected, actual)] == [
        "state_dict.1.num_batches_tracked differs: 1 of 1 elements differ",
        "optimizer differs: missing in the resumed run",
        "rng.0.python.1 differs: 2, resumed 3",
    ]
    assert not list(compare_states({"loss": float("nan"), "w": torch.tensor([float("nan"), 1.0])},
                                   {"loss": float("nan"), "w": torch.tensor([float("nan"), 1.0])}))


@pytest.mark.parametrize("task", sorted(QUICK_RUNS))
def test_each_shipped_quick_config_resumes_exactly(task, tmp_path):
    config, shrink = QUICK_RUNS[task]
    result = run_trainyard("verify-resume", config, "--iters", "4", "--kill-at", "2", "--work-dir", str(tmp_path),
                           "--cfg-options", *shrink, *SINGLE_PROCESS_DATA, *NO_VALIDATION)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.splitlines()[-1].startswith("PASS: "), result.stdout
    assert "killed (SIGKILL) after iteration 2" in result.stdout
    assert "resumed from" in (tmp_path / "resumed.log").read_text()


def test_a_hook_with_unsaved_state_fails_under_torchrun_naming_the_weight_it_changed(tmp_path):
    result = run_trainyard("verify-resume", TINY, "--iters", "4", "--launcher", "pytorch", "--nproc", "2", "--work-dir", str(tmp_path),
                           "--cfg-options", *NO_VALIDATION, "custom_hooks=[dict(type='UnsavedStateHook')]")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    last = result.stdout.splitlines()[-1]
    assert last.startswith("FAIL: state_dict.conv.weight differs: max abs diff "), result.stdout
    assert "world size 2" in (tmp_path / "resumed.log").read_text()


def test_a_kill_point_outside_the_run_is_refused_in_one_line(tmp_path):
    result = run_trainyard("verify-resume", TINY, "--iters", "4", "--kill-at", "4", "--work-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == "trainyard verify-resume: error: --kill-at must be between 1 and --iters - 1 (3), got 4"
    assert not list(tmp_path.iterdir())


def test_the_killed_runs_checkpoint_is_found_as_a_file_or_as_a_dcp_directory(tmp_path):
    from pathlib import Path

    from trainyard.resume_check import ResumeReport, saved_iteration

    assert saved_iteration(tmp_path, 2) is None
    (tmp_path / "iter_2.dcp").mkdir()
    (tmp_path / "iter_2.dcp" / ".metadata").write_bytes(b"")
    assert saved_iteration(tmp_path, 2) == tmp_path / "iter_2.dcp"
    (tmp_path / "iter_2.pth").write_bytes(b"x")
    assert saved_iteration(tmp_path, 2) == tmp_path / "iter_2.pth"
    report = ResumeReport(Path("a/iter_4.dcp"), Path("b/iter_4.dcp"), 4, 3, weights_only=True)
    assert report.summary().startswith("PASS: 3 tensors") and report.summary().endswith("(DCP checkpoints: model weights only, not the optimizer or other training state)")
