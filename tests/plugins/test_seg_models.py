"""Segmentation models: loss and predict modes on tiny batches."""

import pytest
import torch

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
    loaded = MODELS.build(dict(type="LRASPPMobileNetV3", num_classes=3, weights_path=str(path)))
    for key, value in source.net.state_dict().items():
        assert torch.equal(value, loaded.net.state_dict()[key])
