"""Sliding-window segmentation inference (``model.test_cfg=dict(mode='slide', ...)``), exact where windows overlap."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

from trainyard import ConfigError, MODELS, Predictor, cli
from trainyard_seg.models.slide import check_test_cfg, slide_logits, window_starts


@pytest.fixture(scope="module")
def trained(quick_run):
    """The quick seg run's model (trained a few iterations), in eval mode."""
    predictor = Predictor.from_run(quick_run("seg") / "iter_8.pth", device="cpu")
    return predictor.model


def shapes_batch(model, size: int, index: int = 1) -> dict:
    from trainyard_seg.datasets.shapes import ShapesDataset

    image = ShapesDataset(split="test", length=index + 1, size=size)[index]["inputs"]
    return model.data_preprocessor({"inputs": image[None], "meta": [{"ori_size": (size, size)}]})


def predict(model, batch, mode: str, test_cfg: dict) -> torch.Tensor:
    model.test_cfg = check_test_cfg(test_cfg)
    try:
        with torch.inference_mode():
            return model(batch, mode=mode)
    finally:
        model.test_cfg = {"mode": "whole"}


def test_one_window_covering_the_image_equals_whole_image_inference_exactly(trained):
    batch = shapes_batch(trained, 64)
    whole = predict(trained, batch, "tensor", {})
    slide = predict(trained, batch, "tensor", dict(mode="slide", crop_size=(64, 64), stride=(48, 48)))
    assert torch.equal(slide, whole)
    assert torch.equal(predict(trained, batch, "predict", dict(mode="slide", crop_size=64, stride=32)),
                       predict(trained, batch, "predict", {}))


def test_on_an_image_four_times_the_training_size_windows_agree_with_the_whole_image_on_most_pixels(trained):
    batch = shapes_batch(trained, 256)  # trained on 64x64
    whole = predict(trained, batch, "predict", {})
    slide = predict(trained, batch, "predict", dict(mode="slide", crop_size=(64, 64), stride=(42, 42)))
    assert slide.shape == whole.shape == (1, 256, 256)
    assert (slide == whole).float().mean() > 0.8


def test_overlapping_windows_are_averaged_by_how_many_cover_each_pixel():
    pointwise = nn.Conv2d(3, 5, 1)  # a pixel's logits do not depend on its window: the average is the whole image's
    inputs = torch.randn(2, 3, 50, 70)
    with torch.no_grad():
        slide = slide_logits(pointwise, inputs, 5, crop_size=(20, 30), stride=(7, 11))
        torch.testing.assert_close(slide, pointwise(inputs), rtol=1e-6, atol=1e-6)
        windows_per_pixel = slide_logits(lambda crop: torch.ones(crop.shape[0], 1, *crop.shape[-2:]), inputs[:, :1], 1, (20, 30), (7, 11))
    assert torch.equal(windows_per_pixel, torch.ones_like(windows_per_pixel))


def test_windows_end_at_the_border_and_cover_every_pixel():
    assert window_starts(256, 64, 42) == [0, 42, 84, 126, 168, 192]
    assert window_starts(64, 64, 42) == [0]
    assert window_starts(40, 64, 42) == [0]  # smaller than a window: one, padded


def test_an_image_smaller_than_a_window_is_padded_to_it_and_cropped_back():
    seen = []

    def network(crop):
        seen.append(tuple(crop.shape[-2:]))
        return crop[:, :2] * 2

    inputs = torch.randn(1, 3, 20, 50)
    logits = slide_logits(network, inputs, 2, crop_size=(32, 32), stride=(16, 16))
    assert set(seen) == {(32, 32)}
    assert logits.shape == (1, 2, 20, 50)
    torch.testing.assert_close(logits, inputs[:, :2] * 2)


def test_slide_keeps_the_largest_activation_to_one_windows_size():
    model = MODELS.build(dict(type="UNet", num_classes=3, base_channels=4, depth=2)).eval()
    largest = []
    hooks = [m.register_forward_hook(lambda module, args, output: largest.append(output.numel())) for m in model.modules()
             if isinstance(m, nn.Conv2d)]
    batch = {"inputs": torch.randn(1, 3, 256, 256)}
    predict(model, batch, "tensor", {})
    whole, largest[:] = max(largest), []
    predict(model, batch, "tensor", dict(mode="slide", crop_size=(64, 64), stride=(64, 64)))
    for hook in hooks:
        hook.remove()
    assert max(largest) * 16 == whole  # a 64x64 window's activations: 1/16 of the 256x256 image's


@pytest.mark.parametrize("test_cfg, message", [
    (dict(mode="sliding"), "must be 'whole' or 'slide'"),
    (dict(mode="slide", crop_size=(64, 64)), "missing: ['stride']"),
    (dict(mode="slide", crop_size=(64, 64), stride=(80, 40)), "larger than crop_size"),
    (dict(mode="slide", crop_size=(0, 64), stride=(32, 32)), "two positive integers"),
    (dict(mode="whole", crop_size=(64, 64)), "mode='slide' only"),
])
def test_a_wrong_test_cfg_is_one_clear_error_when_the_model_is_built(test_cfg, message):
    with pytest.raises(ConfigError, match="model.test_cfg") as error:
        MODELS.build(dict(type="UNet", num_classes=3, test_cfg=test_cfg))
    assert message in str(error.value)


def test_test_command_and_predictor_use_the_configs_slide_mode(quick_run, tmp_path, capsys):
    checkpoint = quick_run("seg") / "iter_8.pth"
    slide = "model.test_cfg=dict(mode='slide', crop_size=(32, 32), stride=(24, 24))"
    status = cli.main(["test", "configs/seg/unet.py", str(checkpoint), "--work-dir", str(tmp_path / "eval"), "--out",
                       str(tmp_path / "metrics.json"), "--cfg-options", "model.base_channels=8", "test_dataloader.dataset.length=4",
                       "custom_hooks=[]", slide])
    assert status == 0 and "mIoU" in capsys.readouterr().out
    alone = tmp_path / "model.pth"
    shutil.copy(checkpoint, alone)
    from trainyard.config import load_config

    cfg = load_config("configs/seg/unet.py", ["model.base_channels=8", slide])
    predictor = Predictor.from_run(alone, config=cfg, device="cpu")
    assert predictor.model.test_cfg["mode"] == "slide"
    image = torch.randint(0, 255, (3, 80, 100), dtype=torch.uint8)
    mask = predictor(image)[0]["mask"]
    batch = {"inputs": predictor.model.data_preprocessor({"inputs": image[None]})["inputs"], "meta": [{"ori_size": (80, 100)}]}
    assert torch.equal(mask, predict(predictor.model, batch, "predict", cfg.model.test_cfg)[0])
    assert not torch.equal(predict(predictor.model, batch, "tensor", cfg.model.test_cfg), predict(predictor.model, batch, "tensor", {}))


def test_an_export_holds_the_whole_image_network_not_the_windows(trained):
    from trainyard_seg.inference import SegTask

    batch = shapes_batch(trained, 64)
    trained.test_cfg = check_test_cfg(dict(mode="slide", crop_size=32, stride=16))
    try:
        with torch.inference_mode():
            exported = SegTask().export_outputs(trained, batch["inputs"])
    finally:
        trained.test_cfg = {"mode": "whole"}
    assert torch.equal(exported, predict(trained, batch, "tensor", {}))


def test_a_crop_smaller_than_the_networks_downsampling_is_one_line_naming_crop_size(quick_run, tmp_path, capsys):
    model = MODELS.build(dict(type="UNet", num_classes=3, base_channels=4, test_cfg=dict(mode="slide", crop_size=(5, 5), stride=(3, 3))))
    with pytest.raises(ConfigError, match=r"model.test_cfg.crop_size \(5, 5\) is too small"):
        model.eval()({"inputs": torch.zeros(1, 3, 20, 20)}, mode="tensor")
    status = cli.main(["test", "configs/seg/unet.py", str(quick_run("seg") / "iter_8.pth"), "--work-dir", str(tmp_path),
                       "--cfg-options", "model.base_channels=8", "test_dataloader.dataset.length=2", "custom_hooks=[]",
                       "model.test_cfg=dict(mode='slide', crop_size=(5, 5), stride=(3, 3))"])
    error = capsys.readouterr().err.strip()
    assert status == 2 and "model.test_cfg.crop_size" in error and "Traceback" not in error and len(error.splitlines()) == 1
