"""Classification test-time augmentation: the softmax of every view averaged, ``--tta`` on test and predict."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from trainyard import MODELS, ConfigError, Predictor, cli


def test_views_average_the_class_probabilities(quick_run):
    model = Predictor.from_run(quick_run("cls"), device="cpu").model
    tta = MODELS.build(dict(type="ClsTTAModel", module=model, scales=[0.75, 1.0], flip=True)).eval()
    images = torch.randint(0, 255, (3, 3, 32, 32), dtype=torch.uint8)
    batch = model.data_preprocessor({"inputs": images})
    inputs = batch["inputs"]
    with torch.inference_mode():
        small = F.interpolate(inputs, size=(24, 24), mode="bilinear", align_corners=False)
        views = [model({"inputs": x}, mode="predict").softmax(dim=1) for x in (small, small.flip(-1), inputs, inputs.flip(-1))]
        merged = tta(batch, mode="predict")
    torch.testing.assert_close(merged.softmax(dim=1), torch.stack(views).mean(dim=0))
    assert merged.shape == (3, model.num_classes)


def test_test_and_predict_commands_take_tta(quick_run, tmp_path, capsys):
    work_dir = quick_run("cls")
    out = tmp_path / "metrics.json"
    assert cli.main(["test", str(work_dir), "--tta", "--work-dir", str(tmp_path / "eval"), "--out", str(out),
                     "--cfg-options", "test_dataloader.dataset.length=16", "custom_hooks=[]"]) == 0
    assert "accuracy_top1" in json.loads(out.read_text())
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 30, 30)).save(images / "red.png")
    assert cli.main(["predict", str(work_dir), str(images), "--tta", "--topk", "6", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    record = json.loads((tmp_path / "out" / "predictions.jsonl").read_text())
    assert abs(sum(entry["score"] for entry in record["topk"]) - 1) < 1e-4  # all six classes: the averaged softmax


def test_tta_from_the_config_file_counts_the_classes_of_a_wrapped_auto_model(quick_run, tmp_path):
    checkpoint = next(quick_run("cls").glob("best_*.pth"))
    out = tmp_path / "metrics.json"
    assert cli.main(["test", "configs/cls/small_cnn_generated.py", str(checkpoint), "--tta", "--work-dir", str(tmp_path / "eval"),
                     "--out", str(out), "--cfg-options", "test_dataloader.dataset.length=16", "custom_hooks=[]"]) == 0
    assert "accuracy_top1" in json.loads(out.read_text())


@pytest.mark.parametrize("wrapper", ["SegTTAModel", "DetTTAModel"])
def test_a_wrapper_of_another_task_is_refused_when_built_naming_the_right_one(quick_run, tmp_path, capsys, wrapper):
    status = cli.main(["test", str(quick_run("cls")), "--tta", "--work-dir", str(tmp_path / "eval"),
                       "--cfg-options", f"tta_model=dict(type='{wrapper}')"])
    error = capsys.readouterr().err.strip()
    assert status == 2 and "ClsTTAModel" in error and "Traceback" not in error and len(error.splitlines()) == 1
    with pytest.raises(ConfigError, match=f"tta_model.type {wrapper} is for .* but the model .* is a classification model: "
                                          r"use tta_model=dict\(type='ClsTTAModel'\)"):
        MODELS.build(dict(type=wrapper, module=Predictor.from_run(quick_run("cls"), device="cpu").model))
