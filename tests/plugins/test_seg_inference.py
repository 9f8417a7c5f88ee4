"""Segmentation predictions on the user's own images: masks at the original size, files, pictures."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import write_images
from PIL import Image

from trainyard import Predictor, cli
from trainyard_seg.inference import read_mask


@pytest.fixture(scope="module")
def predictor(quick_run, tmp_path_factory):
    """Built from a lone copy of the checkpoint: no config file and no work dir around it."""
    alone = tmp_path_factory.mktemp("alone") / "model.pth"
    shutil.copy(quick_run("seg") / "iter_8.pth", alone)
    return Predictor.from_run(alone, device="cpu")


def test_masks_come_back_at_each_original_size(predictor, tmp_path):
    sizes = write_images(tmp_path)
    results = predictor(sorted(tmp_path.iterdir()), probabilities=True)
    assert [tuple(r["mask"].shape) for r in results] == [sizes[name] for name in sorted(sizes)]
    for result in results:
        probabilities = result["probabilities"]
        assert probabilities.shape == (4, *result["mask"].shape)  # background + the three shapes
        assert torch.allclose(probabilities.sum(dim=0), torch.ones(result["mask"].shape), atol=1e-5)
        assert torch.equal(probabilities.argmax(dim=0), result["mask"])


def test_predictions_equal_the_models_own_predict_mode(predictor):
    from trainyard_seg.datasets.shapes import ShapesDataset

    image = ShapesDataset(split="test", length=2, size=64)[1]["inputs"]
    batch = predictor.model.data_preprocessor({"inputs": image[None], "meta": [{"ori_size": (64, 64)}]})
    with torch.inference_mode():
        expected = predictor.model(batch, mode="predict")[0]
    assert torch.equal(predictor(image)[0]["mask"], expected)
    assert predictor.task.classes == ["background", "disc", "rectangle", "triangle"]


def test_predict_command_writes_masks_pictures_and_records(quick_run, tmp_path, predictor):
    sizes = write_images(tmp_path / "images")
    out = tmp_path / "out"
    assert cli.main(["predict", str(quick_run("seg")), str(tmp_path / "images"), "--out", str(out), "--quiet"]) == 0
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["source"] for r in records] == [str(tmp_path / "images" / name) for name in sorted(sizes)]
    for record in records:
        mask = read_mask(out / record["mask_file"])
        assert tuple(mask.shape) == (record["height"], record["width"]) == sizes[record["source"].rsplit("/", 1)[1]]
        assert sum(record["pixels"].values()) == mask.numel()
        assert set(record["pixels"]) <= {"background", "disc", "rectangle", "triangle"}
        with Image.open(out / record["picture"]) as picture:  # input | prediction, enlarged, with a legend below
            assert picture.width >= 2 * 192 and picture.height > 192
    large = next(r for r in records if r["source"].endswith("large.png"))
    expected = predictor(tmp_path / "images" / "large.png")[0]["mask"]
    assert torch.equal(read_mask(out / large["mask_file"]), expected)


def test_test_command_draws_pictures_and_names_the_checkpoints_iteration(quick_run, tmp_path, capsys):
    work_dir = quick_run("seg")
    status = cli.main(["test", "configs/seg/unet.py", str(work_dir / "iter_8.pth"), "--work-dir", str(tmp_path), "--cfg-options",
                       "model.base_channels=8", "test_dataloader.dataset.length=8",
                       "custom_hooks=[dict(type='SegVisualizationHook', interval=1, max_images=3)]"])
    assert status == 0
    assert "Test (iter 8)  mIoU: " in capsys.readouterr().out
    (run_dir,) = tmp_path.iterdir()
    assert run_dir.name.endswith("_test")
    pictures = sorted(p.name for p in (run_dir / "vis").iterdir())
    assert pictures == ["test_confusion_matrix_iter0000008.png", "test_predictions_0_iter0000008.png"]
    picture = run_dir / "vis" / "test_predictions_0_iter0000008.png"
    with Image.open(picture) as image:  # three rows of four 192 px panels with titles, and a legend
        assert image.width >= 4 * 192 and image.height >= 3 * 192
    assert (run_dir / f"{run_dir.name}.log").is_file()


def test_val_command_runs_the_validation_loop_alone(quick_run, tmp_path, capsys):
    out = tmp_path / "val.json"
    status = cli.main(["val", "configs/seg/unet.py", str(quick_run("seg") / "iter_8.pth"), "--work-dir", str(tmp_path / "work"),
                       "--out", str(out), "--cfg-options", "model.base_channels=8", "val_dataloader.dataset.length=8"])
    assert status == 0
    assert "Val (iter 8)  mIoU: " in capsys.readouterr().out
    assert 0.0 <= json.loads(out.read_text())["mIoU"] <= 1.0
    (run_dir,) = (tmp_path / "work").iterdir()
    assert run_dir.name.endswith("_val")


def test_data_workers_give_the_same_results(quick_run, predictor, tmp_path):
    write_images(tmp_path)
    with_workers = Predictor.from_run(quick_run("seg") / "iter_8.pth", device="cpu", num_workers=1, batch_size=3)
    for mine, theirs in zip(predictor(tmp_path), with_workers(tmp_path)):
        assert torch.equal(mine["mask"], theirs["mask"])


def test_visualization_hook_takes_max_images_and_its_old_name_with_one_warning_line(trainyard_log):
    from trainyard import HOOKS

    assert HOOKS.build(dict(type="SegVisualizationHook", max_images=3)).max_images == 3
    assert "deprecated" not in trainyard_log.text
    assert HOOKS.build(dict(type="SegVisualizationHook", max_samples=2)).max_images == 2
    assert {r.getMessage() for r in trainyard_log.records if "deprecated" in r.getMessage()} == {
        "SegVisualizationHook: 'max_samples' is deprecated and will be removed, use 'max_images' (max_samples=2 is used as max_images=2)"}
