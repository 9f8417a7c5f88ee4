"""What a run leaves in its run directory, and how values are smoothed."""

import json

import pytest
import torch
from conftest import tiny_cfg

from trainyard.logging import LogBuffer
from trainyard.runner import Runner


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    runner = Runner.from_cfg(tiny_cfg(tmp_path_factory.mktemp("run"), "train_cfg.max_epochs=2"))
    runner.train()
    return runner


def test_run_directory_holds_log_config_scalars_and_events(finished_run):
    run_dir = finished_run.run_dir
    assert run_dir.parent == finished_run.work_dir
    assert (run_dir / f"{run_dir.name}.log").is_file()
    assert "ToyNet" in (run_dir / "config.py").read_text()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_log_file_has_train_lines_and_validation_metrics(finished_run):
    text = (finished_run.run_dir / f"{finished_run.run_dir.name}.log").read_text()
    assert "Epoch(train) [1][2/6]" in text and "loss_cls: " in text and "lr: " in text and "data_time: " in text
    assert "Val (epoch 1)  accuracy: " in text


def test_scalars_jsonl_has_one_record_per_logged_step(finished_run):
    records = [json.loads(line) for line in (finished_run.run_dir / "scalars.jsonl").read_text().splitlines()]
    train = [r for r in records if "train/loss" in r]
    val = [r for r in records if "val/accuracy" in r]
    assert [r["step"] for r in train] == [2, 4, 6, 8, 10, 12]
    assert [r["step"] for r in val] == [6, 12]
    assert {"train/loss_cls", "train/lr", "train/time", "train/epoch"} <= set(train[0])


def test_tensorboard_events_read_back(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(finished_run.run_dir / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "train/loss" in tags and "val/accuracy" in tags
    assert [e.step for e in events.Scalars("val/accuracy")] == [6, 12]


def test_log_buffer_means_tensors_and_numbers_since_last_read():
    buffer = LogBuffer()
    for value in (1.0, 2.0, 3.0):
        buffer.update_dict({"loss": torch.tensor(value), "time": value * 10})
    assert buffer.pop_means() == pytest.approx({"loss": 2.0, "time": 20.0})
    assert buffer.pop_means() == {}
