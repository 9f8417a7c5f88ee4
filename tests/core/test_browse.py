"""``trainyard browse``: samples after the pipeline and the data preprocessor, drawn with their targets."""

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

from trainyard import ImageDataPreprocessor
from trainyard.browse import to_pixels
from trainyard.cli import main


def test_model_inputs_turn_back_into_the_pixels_they_came_from():
    pixels = torch.randint(0, 256, (2, 3, 5, 7), dtype=torch.uint8)
    preprocessor = ImageDataPreprocessor(mean=(120.0, 110.0, 100.0), std=(60.0, 50.0, 40.0))
    normalised = preprocessor({"inputs": pixels.clone()})["inputs"]
    assert all(torch.equal(to_pixels(image, preprocessor), original) for image, original in zip(normalised, pixels))


def test_a_float_image_without_a_preprocessor_is_read_as_zero_to_one():
    assert torch.equal(to_pixels(torch.full((3, 2, 2), 0.5), None), torch.full((3, 2, 2), 128, dtype=torch.uint8))


@pytest.mark.parametrize("config, options", [
    ("configs/cls/small_cnn_generated.py", ["train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False"]),
    ("configs/seg/unet.py", ["train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False"]),
], ids=["cls", "seg"])
def test_browse_writes_one_picture_per_sample_and_a_grid(tmp_path, capsys, config, options):
    assert main(["browse", str(REPO / config), "--n", "3", "--out", str(tmp_path), "--cfg-options", *options]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train_0000.png", "train_0001.png", "train_0002.png", "train_grid.png"]
    out = capsys.readouterr().out
    assert f"wrote 3 pictures in {tmp_path}" in out and "channel means" in out
    with Image.open(tmp_path / "train_0000.png") as picture:
        assert picture.width >= 192  # small samples are enlarged so their labels stay readable


def _browse_cls(out, *options):
    loader = ["train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False", "train_dataloader.batch_size=2"]
    assert main(["browse", str(REPO / "configs/cls/small_cnn_generated.py"), "--n", "4", "--out", str(out),
                 "--cfg-options", *loader, *options]) == 0
    return [torch.tensor(np.array(Image.open(out / f"train_000{i}.png")), dtype=torch.int32) for i in range(4)]


def test_the_training_split_is_shown_after_the_batch_augmentations(tmp_path):
    plain = _browse_cls(tmp_path / "plain")
    mixed = _browse_cls(tmp_path / "mixed", "model.data_preprocessor.batch_augments=[dict(type='MixUp', alpha=1.0)]")
    assert all(not torch.equal(a, b) for a, b in zip(plain, mixed))


def test_the_targets_are_drawn_by_the_task_classes_by_name():
    from trainyard_cls.inference import ClsTask

    task = ClsTask({"classes": ["cat", "dog"]})
    blank = torch.zeros(3, 32, 32, dtype=torch.uint8)
    plain, labelled = task.draw_target(blank, torch.tensor(1)), task.draw_target(blank, torch.tensor([0.3, 0.7]))
    assert plain.shape == labelled.shape and plain.dtype == torch.uint8
    assert not torch.equal(plain, labelled)  # a mixed target lists both classes with their weights
    assert plain[:, 40:].eq(0).all()  # the caption sits at the top-left; the rest is the (enlarged) image


def test_detection_boxes_are_drawn_where_the_target_puts_them():
    from trainyard.inference import Task
    from trainyard_det.inference import DetTask
    from trainyard_det.visualization import class_colour

    task = DetTask({"classes": ["box"]})
    image = torch.zeros(3, 96, 96, dtype=torch.uint8)
    picture = task.draw_target(image, {"boxes": torch.tensor([[60.0, 50.0, 90.0, 90.0]]), "labels": torch.tensor([0])})
    colour = torch.tensor(class_colour(0), dtype=torch.uint8).view(3, 1, 1)
    rows, columns = (picture == colour).all(dim=0).nonzero(as_tuple=True)
    width = picture.shape[-1]  # the ground-truth panel, enlarged to width x width, under a title band and above a legend
    in_image = rows < picture.shape[-2] - 30
    assert columns[in_image].min() >= 0.6 * width  # the box sits in the right part, where x >= 60 of 96 puts it
    assert columns[~in_image].max() < 0.1 * width  # and the legend names its class
    assert Task().draw_target(image, None) is None  # a model without a task: the image alone


def test_browse_into_a_file_is_one_clear_error(tmp_path, capsys):
    blocking = tmp_path / "taken"
    blocking.write_text("")
    assert main(["browse", str(REPO / "tests/configs/tiny.py"), "--out", str(blocking / "pictures")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "is a file" in err
