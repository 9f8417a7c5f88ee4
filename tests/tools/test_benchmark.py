"""``tools/benchmark.py``'s modes run end to end on a tiny setting and print their comparison (no timing is asserted)."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import REPO, run_command

TINY = {
    "fixed": ["--iters", "30", "--warmup", "5", "--samples", "30", "--rounds", "1", "--clock", "cpu"],
    "epochs": ["--samples", "64", "--batch-size", "32", "--image-size", "8", "--epochs", "2", "--rounds", "1", "--without-hooks", "progress_bar,nan_guard"],
    "val": ["--model", "unet", "--image-size", "32", "--samples", "8", "--batch-size", "4", "--rounds", "2"],
    "predict": ["--model", "unet", "--image-size", "32", "--samples", "8", "--batch-size", "4", "--rounds", "2"],
}


@pytest.mark.parametrize("mode", sorted(TINY))
def test_mode_compares_trainyard_with_the_plain_loop(mode):
    result = run_command([sys.executable, "tools/benchmark.py", "--mode", mode, *TINY[mode]])
    assert result.returncode == 0, result.stderr[-3000:]
    if mode == "fixed":
        assert "plain loop :" in result.stdout and "trainyard  :" in result.stdout and "us/iter, extra" in result.stdout
    elif mode == "epochs":
        assert "wall(2 epochs) - wall(1 epoch)" in result.stdout and "trainyard  :" in result.stdout and "ratio to plain" in result.stdout
        assert "trainyard without default_hooks: progress_bar, nan_guard" in result.stdout
    else:
        assert "throughput ratio (trainyard / plain, images/s)" in result.stdout


def test_a_hook_name_the_default_runtime_lacks_is_refused_before_any_round():
    result = run_command([sys.executable, "tools/benchmark.py", "--mode", "fixed", "--without-hooks", "logger,timerr"])
    assert result.returncode == 1 and "round" not in result.stderr
    assert "--without-hooks: timerr not among default_hooks (timer, logger," in result.stderr


def test_data_mode_writes_jpeg_files_and_compares_both_pipelines_with_torchvision(tmp_path):
    result = run_command([sys.executable, "tools/benchmark.py", "--mode", "data", "--samples", "6", "--image-size", "32",
                          "--batch-size", "3", "--num-workers", "0", "--rounds", "1", "--data-dir", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((tmp_path / "images").rglob("*.jpg"))) == 6
    assert "data loading, imagefolder" in result.stdout and "data loading, coco" in result.stdout
    assert result.stdout.count("throughput ratio (trainyard / plain, images/s)") == 2


def test_scaling_reads_the_iteration_time_of_every_run_after_its_first_interval(tmp_path, monkeypatch):
    """The scaling mode's runs take minutes (torchrun on the seg job), so only its reading of the runs is tested here."""
    monkeypatch.syspath_prepend(str(REPO / "tools"))
    import benchmark_scaling

    for job, times in (("job0", [9.0, 0.2, 0.4]), ("job1", [9.0, 0.5])):
        run_dir = tmp_path / job / "20260101_000000"
        run_dir.mkdir(parents=True)
        lines = [{"step": 10 * i, "train/time": t, "train/loss": 1.0} for i, t in enumerate(times)] + [{"step": 30, "val/mIoU": 0.5}]
        (run_dir / "scalars.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert benchmark_scaling._seconds_per_iteration(tmp_path) == pytest.approx([0.3, 0.5])
