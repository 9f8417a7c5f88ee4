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


def test_scalars_pictures_and_images_read_back_from_one_event_file(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from trainyard.logging import RunWriter

    writer = RunWriter(tmp_path, rank=0)
    writer.add_scalars({"loss": 0.5, "nan": float("nan")}, step=3, prefix="train/")
    writer.add_picture("val/predictions", torch.zeros(3, 8, 12, dtype=torch.uint8), step=3)
    writer.add_image("val/heatmap", torch.rand(3, 5, 7), step=4)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()  # before close: every event is on disk when its call returns
    assert events.Tags()["scalars"] == ["train/loss"]
    assert sorted(events.Tags()["images"]) == ["val/heatmap", "val/predictions"]
    assert (events.Images("val/predictions")[0].width, events.Images("val/heatmap")[0].height) == (12, 5)
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(3, 0.5)]
    writer.close()
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 1


def test_event_records_are_byte_for_byte_those_of_tensorboards_record_writer(tmp_path):
    """The checksums come from google-crc32c; TensorBoard's own (pure-Python) writer must produce the same bytes."""
    import io

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.record_writer import RecordWriter

    from trainyard.tensorboard_events import EventFile

    events = EventFile(tmp_path)
    summary = Summary(value=[Summary.Value(tag="train/loss", simple_value=0.25), Summary.Value(tag="train/lr", simple_value=0.01)])
    events.add_summary(summary, step=7)
    events.close()
    written = next(tmp_path.glob("events.out.tfevents.*")).read_bytes()

    expected = io.BytesIO()
    reference = RecordWriter(expected)
    for event in _read_events(written):
        reference.write(event.SerializeToString())
    assert written == expected.getvalue()
    assert [e.step for e in _read_events(written)] == [0, 7] and _read_events(written)[1].summary == summary


def _read_events(data: bytes) -> list:
    from tensorboard.compat.proto.event_pb2 import Event

    events, offset = [], 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 8], "little")
        events.append(Event.FromString(data[offset + 12 : offset + 12 + length]))
        offset += 12 + length + 4
    return events


def test_log_buffer_means_tensors_and_numbers_since_last_read():
    buffer = LogBuffer()
    for value in (1.0, 2.0, 3.0):
        buffer.update_dict({"loss": torch.tensor(value), "time": value * 10})
    assert buffer.pop_means() == pytest.approx({"loss": 2.0, "time": 20.0})
    assert buffer.pop_means() == {}


def test_event_records_are_written_without_google_crc32c_too(tmp_path):
    """An environment installed before the dependency was added falls back to TensorBoard's own checksum."""
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['google_crc32c'] = None\n"
        "from pathlib import Path\n"
        "from tensorboard.compat.proto.summary_pb2 import Summary\n"
        "from trainyard.tensorboard_events import EventFile\n"
        f"events = EventFile(Path({str(tmp_path)!r}))\n"
        "events.add_summary(Summary(value=[Summary.Value(tag='train/loss', simple_value=0.5)]), step=3)\n"
        "events.close()\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(3, 0.5)]
