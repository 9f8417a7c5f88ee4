"""Predictor inputs, checkpoint lookup and the predict command's answers to bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import write_images
from PIL import Image

from trainyard import CheckpointError, DatasetError, cli
from trainyard.inference import expand_inputs, find_checkpoint, to_image_tensor


def test_every_kind_of_image_becomes_rgb_uint8():
    grey = np.full((5, 7), 9, dtype=np.uint8)
    rgba = Image.fromarray(np.zeros((5, 7, 4), dtype=np.uint8), "RGBA")
    for item in (grey, rgba, torch.zeros(5, 7), torch.zeros(4, 5, 7, dtype=torch.uint8), np.zeros((5, 7, 3), dtype=np.float32)):
        image = to_image_tensor(item)
        assert image.shape == (3, 5, 7) and image.dtype == torch.uint8
    assert to_image_tensor(grey)[:, 0, 0].tolist() == [9, 9, 9]
    assert to_image_tensor(torch.ones(3, 2, 2))[0, 0, 0] == 255  # floats are 0-1


def test_inputs_that_are_not_images_are_refused_with_their_name(tmp_path):
    with pytest.raises(DatasetError, match="has 1, 3 or 4 channels, got 2"):
        to_image_tensor(torch.zeros(2, 5, 5), "input 0")
    with pytest.raises(DatasetError, match="cannot read a dict as an image"):
        to_image_tensor({})
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"folder .*empty holds no images"):
        expand_inputs(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match=r"notes.txt is not an image file"):
        expand_inputs([str(tmp_path / "notes.txt")])
    with pytest.raises(DatasetError, match=r"input .*missing.png does not exist"):
        expand_inputs(tmp_path / "missing.png")


def test_folders_expand_to_their_images_in_name_order(tmp_path):
    sizes = write_images(tmp_path / "images")
    (tmp_path / "images" / "readme.txt").write_text("not an image")
    sources = [source for source, _ in expand_inputs([tmp_path / "images", torch.zeros(2, 3, 4, 4)])]
    assert sources == [str(tmp_path / "images" / name) for name in sorted(sizes)] + ["input 1[0]", "input 1[1]"]


def test_a_work_dir_gives_its_best_checkpoint_else_its_last(quick_run, tmp_path):
    work_dir = quick_run("seg")
    (best,) = work_dir.glob("best_*.pth")
    assert find_checkpoint(work_dir) == best
    (run_dir,) = [p for p in work_dir.iterdir() if p.is_dir()]
    assert find_checkpoint(run_dir) == best  # a run directory is looked up in its work dir
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(work_dir / "iter_8.pth", copy / "iter_8.pth")
    assert find_checkpoint(copy) == copy / "iter_8.pth"
    (tmp_path / "nothing").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        find_checkpoint(tmp_path / "nothing")


def _predict_error(capsys, *args):
    status = cli.main(["predict", *map(str, args)])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    return err


def test_predict_answers_bad_input_with_one_message(quick_run, tmp_path, capsys):
    work_dir = quick_run("seg")
    (tmp_path / "notes.txt").write_text("hello")
    assert "notes.txt is not an image file" in _predict_error(capsys, work_dir, tmp_path / "notes.txt", "--out", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    assert "holds no images" in _predict_error(capsys, work_dir, tmp_path / "empty", "--out", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written before the inputs were checked


def test_a_checkpoint_of_another_model_is_refused_by_name(quick_run, tmp_path, capsys):
    err = _predict_error(capsys, "configs/cls/small_cnn_generated.py", quick_run("seg") / "iter_8.pth", tmp_path)
    assert "does not match the model" in err and "Was iter_8.pth trained with this config (ImageClassifier)?" in err
