"""Predictor inputs, checkpoint lookup and the predict command's answers to bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import write_images
from PIL import Image

from trainyard import CheckpointError, ConfigError, DatasetError, Predictor, cli
from trainyard.images import read_image
from trainyard.inference import expand_inputs, find_checkpoint, pad_to_minimum, remove_padding, resolve_device, to_image_tensor


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


def test_16_bit_images_are_scaled_to_8_bits_by_1_over_257(tmp_path):
    values = np.array([[0, 128, 129, 257 * 100, 65535]], dtype=np.uint16)
    expected = [0, 0, 1, 100, 255]
    for name in ("depth.png", "depth.tif"):
        Image.fromarray(values).save(tmp_path / name)
        assert read_image(tmp_path / name)[:, 0].tolist() == [expected] * 3, name
    assert to_image_tensor(values)[:, 0].tolist() == [expected] * 3
    assert to_image_tensor(Image.fromarray(values))[:, 0].tolist() == [expected] * 3
    assert to_image_tensor(torch.from_numpy(values))[:, 0].tolist() == [expected] * 3


def test_a_file_that_is_not_an_image_is_named_as_such(tmp_path):
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(DatasetError, match=r"text.jpg: it is not a readable image") as error:
        read_image(tmp_path / "text.jpg")
    assert "decode_avif" not in str(error.value)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"empty.png: the file is empty"):
        read_image(tmp_path / "empty.png")
    Image.fromarray(np.full((2, 3, 3), 7, np.uint8)).save(tmp_path / "bitmap.bmp")
    (tmp_path / "bitmap.bmp").rename(tmp_path / "misnamed.jpg")  # a BMP under a JPEG name still reads
    assert read_image(tmp_path / "misnamed.jpg").tolist() == torch.full((3, 2, 3), 7).tolist()


def test_padding_up_to_a_minimum_side_is_recorded_and_removed_again():
    batch = {"inputs": torch.ones(2, 3, 4, 6), "meta": [{}, {}]}
    pad_to_minimum(batch, 8)
    assert batch["inputs"].shape == (2, 3, 8, 8) and batch["inputs"][:, :, 4:].abs().sum() == 0
    assert batch["meta"] == [{"unpadded_size": (4, 6)}] * 2
    assert remove_padding(torch.zeros(2, 5, 8, 8), batch).shape == (2, 5, 4, 6)
    assert remove_padding(torch.zeros(2, 5, 4, 4), batch).shape == (2, 5, 2, 3)  # outputs at half the resolution
    large = {"inputs": torch.ones(1, 3, 9, 8), "meta": [{}]}
    pad_to_minimum(large, 8)
    assert large["inputs"].shape == (1, 3, 9, 8) and large["meta"] == [{}]


@pytest.mark.parametrize("task", ["seg", "cls"])
def test_images_smaller_than_the_model_runs_on_are_predicted(quick_run, task):
    predictor = Predictor.from_run(quick_run(task), device="cpu")
    assert predictor.min_input_size == 8
    one_pixel, strip = torch.zeros(3, 1, 1, dtype=torch.uint8), torch.zeros(3, 3, 40, dtype=torch.uint8)
    results = predictor([one_pixel, strip])
    if task == "seg":
        assert [r["mask"].shape for r in results] == [(1, 1), (3, 40)]  # cropped back from the padding
    else:
        assert all(r["topk"] for r in results)


def test_counts_and_devices_that_cannot_work_are_refused(quick_run, tmp_path, capsys):
    with pytest.raises(ConfigError, match="batch_size must be a positive integer, got 0"):
        Predictor(torch.nn.Identity(), batch_size=0, device="cpu")
    with pytest.raises(ConfigError, match="num_workers must be 0 .* or more, got -1"):
        Predictor(torch.nn.Identity(), num_workers=-1, device="cpu")
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    for option, value in (("--batch-size", "0"), ("--num-workers", "-1"), ("--topk", "0")):
        with pytest.raises(SystemExit) as exit_status:
            cli.main(["predict", str(quick_run("cls")), str(tmp_path), option, value])
        assert exit_status.value.code == 2 and f"argument {option}: must be" in capsys.readouterr().err


def test_predict_refuses_an_out_that_is_a_file_and_keeps_other_files_in_its_folder(quick_run, tmp_path, capsys):
    sizes = write_images(tmp_path / "images")
    (tmp_path / "afile").write_text("x")
    err = _predict_error(capsys, quick_run("seg"), tmp_path / "images", "--out", tmp_path / "afile" / "preds")
    assert f"--out {tmp_path / 'afile' / 'preds'}: {tmp_path / 'afile'} is a file" in err
    assert (tmp_path / "afile").read_text() == "x"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    assert cli.main(["predict", str(quick_run("seg")), str(tmp_path / "images"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep"
    assert len((tmp_path / "out" / "predictions.jsonl").read_text().splitlines()) == len(sizes)
