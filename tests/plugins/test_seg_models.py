"""Segmentation models: loss and predict modes on tiny batches."""

import pytest
import torch
from conftest import place_in_torch_hub_cache
from torchvision.models import segmentation

from trainyard import MODELS

MODEL_CONFIGS = [
    dict(type="UNet", num_classes=4, base_channels=4, depth=2),
    dict(type="UNet", num_classes=4, base_channels=4, depth=2, norm="GN", dice_weight=0.5),
    dict(type="FCNResNet50", num_classes=3, aux_loss=True),
    dict(type="DeepLabV3ResNet50", num_classes=3),
    dict(type="DeepLabV3MobileNetV3", num_classes=3),
    dict(type="LRASPPMobileNetV3", num_classes=3),
]


def tiny_batch(num_classes, size=64, batch=2):
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(num_classes, (batch, size, size), generator=generator)
    targets[:, :4, :4] = 255
    return {
        "inputs": torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator),
        "targets": targets,
        "meta": [{"index": i, "ori_size": (size, size)} for i in range(batch)],
    }


@pytest.mark.parametrize("cfg", MODEL_CONFIGS, ids=lambda c: c["type"] + ("-dice" if c.get("dice_weight") else ""))
def test_loss_is_finite_and_backward_works(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    batch = model.data_preprocessor(tiny_batch(cfg["num_classes"]))
    losses = model(batch, mode="loss")
    assert "loss_ce" in losses and all(torch.isfinite(v) for v in losses.values())
    if cfg.get("dice_weight"):
        assert "loss_dice" in losses
    if cfg.get("aux_loss"):
        assert "loss_aux" in losses
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("cfg", [MODEL_CONFIGS[0], MODEL_CONFIGS[5]], ids=["UNet", "LRASPP"])
def test_predictions_are_label_maps_at_the_original_size(cfg):
    model = MODELS.build(cfg).eval()
    batch = model.data_preprocessor(tiny_batch(cfg["num_classes"], size=32))
    batch["meta"] = [{"ori_size": (48, 40)}, {"ori_size": (48, 40)}]
    with torch.no_grad():
        predictions = model(batch, mode="predict")
    assert predictions.shape == (2, 48, 40) and predictions.dtype == torch.int64
    assert int(predictions.max()) < cfg["num_classes"]
    batch["meta"] = [{"ori_size": (48, 40)}, {"ori_size": (20, 30)}]
    with torch.no_grad():
        predictions = model(batch, mode="predict")
    assert [tuple(p.shape) for p in predictions] == [(48, 40), (20, 30)]


def test_torchvision_weights_load_from_a_local_file(tmp_path):
    source = MODELS.build(dict(type="LRASPPMobileNetV3", num_classes=3))
    path = tmp_path / "lraspp.pth"
    torch.save(source.net.state_dict(), path)
    loaded = MODELS.build(dict(type="LRASPPMobileNetV3", num_classes=3, checkpoint=str(path)))
    for key, value in source.net.state_dict().items():
        assert torch.equal(value, loaded.net.state_dict()[key])


def test_weights_path_the_old_name_of_checkpoint_still_loads_with_one_warning_line(tmp_path, trainyard_log):
    source = MODELS.build(dict(type="LRASPPMobileNetV3", num_classes=3))
    path = tmp_path / "lraspp.pth"
    torch.save(source.net.state_dict(), path)
    loaded = MODELS.build(dict(type="LRASPPMobileNetV3", num_classes=3, weights_path=str(path)))
    assert all(torch.equal(value, loaded.net.state_dict()[key]) for key, value in source.net.state_dict().items())
    (warning,) = {r.getMessage() for r in trainyard_log.records if "deprecated" in r.getMessage()}
    assert warning.startswith("LRASPPMobileNetV3: 'weights_path' is deprecated and will be removed, use 'checkpoint'")


def test_whole_model_weights_load_from_the_hub_cache_and_reinitialise_the_classifiers_for_another_class_count(
        tmp_path, monkeypatch, trainyard_log):
    voc = segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21).state_dict()
    file = place_in_torch_hub_cache(tmp_path, segmentation.LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1.url, voc)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("TRAINYARD_OFFLINE", "1")
    model = MODELS.build(dict(type="LRASPPMobileNetV3", num_classes=3, weights="COCO_WITH_VOC_LABELS_V1"))
    assert torch.equal(model.net.backbone["4"].block[0][0].weight, voc["backbone.4.block.0.0.weight"])
    assert model.net.classifier.low_classifier.out_channels == 3
    assert (f"LRASPPMobileNetV3: LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1 ({file}): "
            f"{len(voc) - 4} keys loaded, 0 missing, 0 unexpected, 4 re-initialised") in trainyard_log.text
