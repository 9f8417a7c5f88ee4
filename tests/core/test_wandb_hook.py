"""WandbLoggerHook: the same params, metrics, pictures and checkpoint reference as MLflow, offline; a resume continues the run."""

import json
import struct
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_cfg

from trainyard.hooks import VisualizationHook
from trainyard.runner import Runner

pytest.importorskip("wandb", reason="the wandb extra (in the test extra) is not installed")


def offline_records(path: Path) -> list[dict]:
    """The records of an offline run's ``run-<id>.wandb`` file, as dicts.

    wandb (0.19 and later) has no Python reader for its own files: they are a
    ``:W&B`` header and LevelDB-log blocks of 32 KiB (7-byte record headers: CRC,
    length, type 1 full / 2 first / 3 middle / 4 last), each record a ``Record`` protobuf.
    """
    from google.protobuf.json_format import MessageToDict
    from wandb.proto import wandb_internal_pb2

    data, position, pieces, records = path.read_bytes(), 7, [], []
    while position + 7 <= len(data):
        room = 32768 - position % 32768
        if room < 7:
            position += room
            continue
        length, kind = struct.unpack("<HB", data[position + 4:position + 7])
        pieces.append(data[position + 7:position + 7 + length])
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(pieces))
            records.append(MessageToDict(record))
            pieces = []
        elif kind == 0:
            break
    return records


def _key(item: dict) -> str:
    return item.get("key") or "/".join(item["nestedKey"])


def history(records: list[dict]) -> list[dict]:
    """The logged rows; an image's fields as ``'<key>/<field>'``."""
    return [{_key(item): json.loads(item["valueJson"]) for item in record["history"]["item"]} for record in records if "history" in record]


class _BlankPicture(VisualizationHook):
    def draw(self, dataset, data_batch, outputs):
        return torch.zeros(3, 8, 8, dtype=torch.uint8)


def _train(work_dir: Path, epochs: int, resume: bool = False) -> Runner:
    cfg = tiny_cfg(work_dir, f"train_cfg.max_epochs={epochs}", "custom_hooks=[dict(type='WandbLoggerHook', project='tiny')]")
    cfg.resume = "auto" if resume else False
    runner = Runner.from_cfg(cfg)
    runner.register_hook(_BlankPicture(interval=100))
    runner.train()
    return runner


def test_an_offline_run_and_its_resume_log_params_metrics_pictures_and_the_best_checkpoint_to_one_wandb_run(tmp_path, monkeypatch):
    wandb_dir = tmp_path / "wandb_home"
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
    monkeypatch.setenv("WANDB_SILENT", "true")
    _train(tmp_path / "work", epochs=2)
    _train(tmp_path / "work", epochs=3, resume=True)

    files = sorted(wandb_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 2 and files[0].name == files[1].name  # two processes, one run id: `wandb sync` makes them one run
    first, resumed = (offline_records(path) for path in files)
    rows = history(first) + history(resumed)
    losses = {row["iter"] for row in rows if "train/loss" in row}
    accuracies = {row["iter"]: row["val/accuracy"] for row in rows if "val/accuracy" in row}
    assert losses == set(range(2, 19, 2))  # logger interval 2, 6 iterations an epoch, 3 epochs
    assert sorted(accuracies) == [6, 12, 18] and all(0 <= value <= 1 for value in accuracies.values())
    assert min(row["iter"] for row in history(resumed)) > 12  # the resume logs only what it trained
    pictures = [row["iter"] for row in rows if row.get("vis/val_predictions_0/_type") == "image-file"]
    assert pictures == [6, 12, 18]  # each validation's picture once, the resume's included

    config = {_key(item): json.loads(item["valueJson"]) for record in first if "run" in record
              for item in record["run"]["config"]["update"]}
    assert config["optim_wrapper.optimizer.lr"] == 0.1 and "trainyard_version" in config
    summary = {_key(item): json.loads(item["valueJson"]) for record in resumed if "summary" in record
               for item in record["summary"].get("update", [])}
    assert summary["best_checkpoint"].startswith(str((tmp_path / "work").resolve())) and summary["best_checkpoint"].endswith(".pth")


def test_without_wandb_the_config_fails_in_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    from trainyard.cli import main

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    code = main(["train", "tests/configs/tiny.py", "--work-dir", str(tmp_path), "--cfg-options",
                 "custom_hooks=[dict(type='WandbLoggerHook')]"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "WandbLoggerHook needs wandb: pip install 'trainyard[wandb]'" in err
