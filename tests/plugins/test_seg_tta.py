"""Segmentation test-time augmentation: ``--tta`` on test, val and predict; probabilities of every view averaged."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from trainyard import MODELS, ConfigError, Predictor, cli
from trainyard.tta import tta_views


@pytest.fixture(scope="module")
def model(quick_run):
    return Predictor.from_run(quick_run("seg") / "iter_8.pth", device="cpu").model


def batch_of(model, size: int = 64) -> dict:
    from trainyard_seg.datasets.shapes import ShapesDataset

    images = torch.stack([ShapesDataset(split="test", length=2, size=size)[i]["inputs"] for i in range(2)])
    return model.data_preprocessor({"inputs": images, "meta": [{"ori_size": (size, size)}] * 2})


def test_flip_and_scales_average_the_probabilities_of_each_view_mapped_back(model):
    from torch.nn import functional as F

    tta = MODELS.build(dict(type="SegTTAModel", module=model, scales=[0.5, 1.0], flip=True)).eval()
    batch = batch_of(model)
    inputs = batch["inputs"]
    with torch.inference_mode():
        merged = tta(batch, mode="tensor")
        views = []
        for scale in (0.5, 1.0):
            scaled = F.interpolate(inputs, scale_factor=scale, mode="bilinear", align_corners=False) if scale != 1 else inputs
            for flip in (False, True):
                logits = model({"inputs": scaled.flip(-1) if flip else scaled}, mode="tensor")
                logits = F.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=False) if scale != 1 else logits
                views.append((logits.flip(-1) if flip else logits).softmax(dim=1))
        expected = torch.stack(views).mean(dim=0)
        torch.testing.assert_close(merged.softmax(dim=1), expected, rtol=1e-5, atol=1e-6)
        assert torch.equal(tta(batch, mode="predict"), expected.argmax(dim=1))


def test_each_image_costs_one_forward_pass_per_view(model):
    calls = []
    hook = model.head.register_forward_hook(lambda module, args, output: calls.append(output.shape[0]))
    tta = MODELS.build(dict(type="SegTTAModel", module=model, scales=[0.75, 1.0, 1.25], flip=True)).eval()
    with torch.inference_mode():
        tta(batch_of(model), mode="predict")
    hook.remove()
    assert calls == [2] * 6  # 3 scales x (plain, flipped), each on the batch of 2


def test_one_unflipped_view_predicts_what_the_model_alone_does(model):
    tta = MODELS.build(dict(type="SegTTAModel", module=model, flip=False)).eval()
    batch = batch_of(model)
    with torch.inference_mode():
        assert torch.equal(tta(batch, mode="predict"), model(batch, mode="predict"))


def test_the_wrapper_holds_the_models_weights_under_their_own_names(model):
    tta = MODELS.build(dict(type="SegTTAModel", module=model))
    assert list(tta.state_dict()) == list(model.state_dict())
    tta.load_state_dict(model.state_dict())


def test_test_command_with_tta_evaluates_and_one_plain_view_scores_as_without(quick_run, tmp_path, capsys):
    checkpoint = str(quick_run("seg") / "iter_8.pth")
    options = ["--cfg-options", "model.base_channels=8", "test_dataloader.dataset.length=8", "custom_hooks=[]"]

    def test(name: str, *extra: str) -> dict:
        out = tmp_path / f"{name}.json"
        assert cli.main(["test", "configs/seg/unet.py", checkpoint, "--work-dir", str(tmp_path / name), "--out", str(out), *extra]) == 0
        return json.loads(out.read_text())

    plain = test("plain", *options)
    with_tta = test("tta", "--tta", *options)
    one_view = test("one_view", "--tta", *options, "tta_model=dict(type='SegTTAModel', scales=[1.0], flip=False)")
    assert "mIoU" in with_tta and with_tta.keys() == plain.keys()
    assert one_view == plain
    assert "Test (iter 8)" in capsys.readouterr().out


def test_predict_with_tta_gives_masks_at_the_original_size_and_probabilities_that_sum_to_one(quick_run):
    predictor = Predictor.from_run(quick_run("seg"), device="cpu", tta=True)
    assert type(predictor.model).__name__ == "SegTTAModel"
    result = predictor(torch.randint(0, 255, (3, 50, 70), dtype=torch.uint8), probabilities=True)[0]
    assert result["mask"].shape == (50, 70)
    torch.testing.assert_close(result["probabilities"].sum(dim=0), torch.ones(50, 70))
    assert torch.equal(result["probabilities"].argmax(dim=0), result["mask"])


def test_predict_command_takes_tta(quick_run, tmp_path):
    from conftest import write_images

    write_images(tmp_path / "images")
    status = cli.main(["predict", str(quick_run("seg")), str(tmp_path / "images"), "--tta", "--out", str(tmp_path / "out"), "--quiet"])
    assert status == 0
    assert len((tmp_path / "out" / "predictions.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize("scales, flip, message", [
    ([], True, "tta_model.scales"), ([1.0, -0.5], True, "tta_model.scales"), ("1.0", True, "tta_model.scales"),
    ([1.0], "yes", "tta_model.flip"),
])
def test_wrong_views_are_one_clear_error(scales, flip, message):
    with pytest.raises(ConfigError, match=message):
        tta_views(scales, flip)


def test_a_tta_model_does_not_train(model):
    tta = MODELS.build(dict(type="SegTTAModel", module=model))
    with pytest.raises(ConfigError, match="train the model itself"):
        tta({"inputs": torch.zeros(1, 3, 8, 8)}, mode="loss")


def test_tta_without_a_tta_model_in_the_config_uses_the_models_default_and_a_model_without_one_is_refused():
    from trainyard.tta import tta_model_config

    assert tta_model_config({"model": {"type": "UNet", "num_classes": 2}}) == {"type": "SegTTAModel"}

    class Plain(nn.Module):
        pass

    with pytest.raises(ConfigError, match="no tta_model"):
        tta_model_config({"model": {"type": Plain}})


@pytest.mark.parametrize("option, message", [
    ("tta_model=dict(type='SegTTAModel', scales=[0])", "tta_model.scales must be a list of positive numbers"),
    ("tta_model=dict(type='SegTTAModell')", "Did you mean 'SegTTAModel'"),
    ("model.test_cfg=dict(mode='slide', crop_size=64, stride=80)", "model.test_cfg.stride (80, 80) is larger than crop_size"),
    ("tta_model=dict(type='ClsTTAModel')", "tta_model.type ClsTTAModel is for classification models, but the model (UNet) is a "
     "segmentation model: use tta_model=dict(type='SegTTAModel')"),
    ("tta_model=dict(type='DetTTAModel')", "use tta_model=dict(type='SegTTAModel')"),
])
def test_a_wrong_tta_or_slide_setting_is_one_line_and_exit_status_2(quick_run, tmp_path, capsys, option, message):
    status = cli.main(["test", "configs/seg/unet.py", str(quick_run("seg") / "iter_8.pth"), "--tta", "--work-dir", str(tmp_path),
                       "--cfg-options", "model.base_channels=8", option])
    error = capsys.readouterr().err.strip()
    assert status == 2 and message in error and "Traceback" not in error and len(error.splitlines()) == 1


class Classifier(nn.Module):
    """[B,K] logits and no ``task``: what a wrapper of another task is known by is its output."""

    def forward(self, batch, mode="predict"):
        return batch["inputs"].mean(dim=(2, 3))


def test_a_segmentation_wrapper_around_a_model_giving_class_logits_is_one_clear_error():
    tta = MODELS.build(dict(type="SegTTAModel", module=Classifier()))
    with pytest.raises(ConfigError, match=r"tta_model.type SegTTAModel reads \[B,K,H,W\] logits .* Classifier returned a tensor of shape \[2, 3\]"):
        tta({"inputs": torch.zeros(2, 3, 8, 8)}, mode="predict")
