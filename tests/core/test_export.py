"""Exports of the seg U-Net and a classifier in every format, each loaded back and compared with PyTorch."""

from __future__ import annotations

import json
import sys
import warnings

import pytest
import torch

from trainyard import ExportError, Predictor, cli, export_model
from trainyard.export import FORMATS

TOLERANCE = 1e-4
"""Largest difference to the PyTorch model's outputs we accept (logits of a few units)."""


@pytest.fixture(scope="module")
def predictors(quick_run):
    return {task: Predictor.from_run(quick_run(task), device="cpu") for task in ("seg", "cls")}


SAMPLE_SIZE = {"seg": (64, 64), "cls": (32, 32)}


def _sample(task: str) -> torch.Tensor:
    return torch.randint(0, 256, (3, *SAMPLE_SIZE[task]), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("task", ["seg", "cls"])
@pytest.mark.parametrize("format", list(FORMATS))
def test_export_round_trip_reproduces_the_model(predictors, task, format, tmp_path):
    if format == "onnx":
        pytest.importorskip("onnxruntime", reason="the 'export' extra is not installed")
    if format == "safetensors":
        pytest.importorskip("safetensors", reason="the 'export' extra is not installed")
    predictor = predictors[task]
    path = tmp_path / f"model{FORMATS[format]}"
    result = export_model(predictor, format, path, _sample(task), atol=TOLERANCE)
    assert result.files[0] == path and path.is_file()
    assert result.max_abs_diff <= TOLERANCE and len(result.checks) >= 2  # a batch of two, one image, (a new size)
    # an independent check, outside export_model: a fresh batch of three through the file's own runtime
    images = torch.randint(0, 256, (3, 3, *SAMPLE_SIZE[task]), generator=torch.Generator().manual_seed(2)).float()
    model = predictor.model
    with torch.inference_mode():
        expected = model({"inputs": model.data_preprocessor({"inputs": images})["inputs"]}, mode="tensor")
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (actual,) = session.run(None, {"images": images.numpy()})
        actual = torch.from_numpy(actual)
    elif format == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export (pt2)
            actual = torch.jit.load(str(path))(images)
    elif format == "pt2":
        actual = torch.export.load(str(path)).module()(images)
    else:
        from safetensors.torch import load_file

        description = json.loads(path.with_suffix(".json").read_text())
        assert description["classes"] == list(predictor.metainfo["classes"]) and description["task"] == predictor.task_name
        weights = load_file(str(path))
        assert weights.keys() == model.state_dict().keys()
        assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
        return
    assert (actual - expected).abs().max().item() <= TOLERANCE


def test_export_command_verifies_and_reports_each_format(quick_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="the 'export' extra is not installed")
    status = cli.main(["export", str(quick_run("seg")), "--format", "onnx", "safetensors", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0
    assert out.count("verified: max abs difference") == 2 and "input (1, 3, 96, 96)" in out  # dynamic image size in ONNX
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_mIoU_iter_8.json", "best_mIoU_iter_8.onnx", "best_mIoU_iter_8.safetensors"]


def test_a_detector_that_cannot_be_traced_gets_one_clear_message(quick_run, tmp_path, capsys):
    status = cli.main(["export", str(quick_run("det")), "--format", "pt2", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert "FasterRCNN cannot be exported as pt2" in err and "a safetensors export works for every model" in err
    assert len(err.strip().splitlines()) == 1


def test_a_missing_extra_is_named(predictors, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(ExportError, match=r"pip install 'trainyard\[export\]'"):
        export_model(predictors["cls"], "onnx", tmp_path / "model.onnx", _sample("cls"))


def test_an_export_that_does_not_reproduce_the_model_is_an_error(predictors, tmp_path):
    with pytest.raises(ExportError, match="does not reproduce the model: max abs difference"):
        export_model(predictors["cls"], "torchscript", tmp_path / "model.pt", _sample("cls"), atol=-1.0)


def test_an_out_that_is_a_file_is_refused_before_exporting(quick_run, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    status = cli.main(["export", str(quick_run("seg")), "--format", "safetensors", "--out", str(tmp_path / "afile")])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err and f"{tmp_path / 'afile'} is a file" in err
    assert (tmp_path / "afile").read_text() == "x"


def test_a_failing_onnx_check_prints_only_our_explanation(quick_run, tmp_path, capfd):
    pytest.importorskip("onnxruntime", reason="the 'export' extra is not installed")
    status = cli.main(["export", str(quick_run("det")), "--format", "onnx", "--out", str(tmp_path)])
    err = capfd.readouterr().err  # the file descriptor: onnxruntime's C++ logger writes there, not to sys.stderr
    assert status == 2 and err.startswith("trainyard export: error: FasterRCNN cannot be exported as onnx")
    assert len(err.strip().splitlines()) == 1, err
