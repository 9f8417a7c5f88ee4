"""Detectors on tiny batches: loss and predict modes, boxes in original pixels, local weights."""

import pytest
import torch
import torchvision
from conftest import place_in_torch_hub_cache
from torch import nn
from torchvision.models import detection
from torchvision.ops.misc import FrozenBatchNorm2d

from trainyard import MODELS, ConfigError

SMALL = dict(min_size=64, max_size=96)
DETECTORS = [
    dict(type="FasterRCNN", variant="resnet50_fpn", **SMALL),
    dict(type="FasterRCNN", variant="resnet50_fpn_v2", **SMALL),
    dict(type="FasterRCNN", variant="mobilenet_v3_large_fpn", **SMALL),
    dict(type="RetinaNet", variant="resnet50_fpn", **SMALL),
    dict(type="FCOS", variant="resnet50_fpn", **SMALL),
    dict(type="SSDlite", variant="mobilenet_v3_large"),
    dict(type="FasterRCNN", backbone=dict(type="SmallDetBackbone"), **SMALL),
    dict(type="RetinaNet", backbone=dict(type="SmallDetBackbone"), anchor_sizes=((16, 32),), **SMALL),
    dict(type="FCOS", backbone=dict(type="SmallDetBackbone"), anchor_sizes=((16,),), aspect_ratios=((1.0,),), **SMALL),
]


def tiny_batch(count=2, size=(48, 64), ori_size=None):
    generator = torch.Generator().manual_seed(0)
    return {
        "inputs": [torch.randint(0, 256, (3, *size), dtype=torch.uint8, generator=generator) for _ in range(count)],
        "targets": [{"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0]]), "labels": torch.tensor([i % 3]), "image_id": i} for i in range(count)],
        "meta": [{"ori_size": ori_size or size} for _ in range(count)],
    }


def name_of(cfg):
    return cfg["type"] + "-" + (cfg.get("variant") or cfg["backbone"]["type"])


@pytest.mark.parametrize("cfg", DETECTORS, ids=name_of)
def test_detector_gives_losses_in_training_and_boxes_in_evaluation(cfg):
    model = MODELS.build(dict(cfg, num_classes=3))
    model.train()
    losses = model(model.data_preprocessor(tiny_batch()), mode="loss")
    assert losses and all(key.startswith("loss_") and value.isfinite() for key, value in losses.items())
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        predictions = model(model.data_preprocessor(tiny_batch()), mode="predict")
    assert len(predictions) == 2
    for prediction in predictions:
        assert prediction["boxes"].shape[1] == 4 and len(prediction["scores"]) == len(prediction["labels"])
        assert ((prediction["labels"] >= 0) & (prediction["labels"] < 3)).all()


class FixedOutput(nn.Module):
    """Stands in for the torchvision network: one box at a known place, in input pixels, with label 1 (background added)."""

    def forward(self, images, targets=None):
        return [{"boxes": torch.tensor([[8.0, 4.0, 32.0, 24.0]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([1])} for _ in images]


def test_predictions_are_in_the_original_images_pixels_after_a_resize():
    model = MODELS.build(dict(type="FasterRCNN", backbone=dict(type="SmallDetBackbone"), num_classes=3, **SMALL))
    model.net = FixedOutput()
    model.eval()
    batch = model.data_preprocessor(tiny_batch(size=(48, 64), ori_size=(96, 256)))  # the pipeline shrank x by 4, y by 2
    (prediction, _) = model(batch, mode="predict")
    assert prediction["boxes"].tolist() == [[32.0, 8.0, 128.0, 48.0]]
    assert prediction["labels"].tolist() == [0]  # torchvision's background offset removed


def test_a_checkpoint_with_another_class_count_loads_with_fresh_heads_and_reports_them(tmp_path, trainyard_log):
    cfg = dict(type="FasterRCNN", backbone=dict(type="SmallDetBackbone"), **SMALL)
    source = MODELS.build(dict(cfg, num_classes=90))
    path = tmp_path / "coco.pth"
    torch.save(source.net.state_dict(), path)  # as torchvision publishes a detector's weights
    model = MODELS.build(dict(cfg, num_classes=3, checkpoint=str(path)))
    assert torch.equal(model.net.backbone.body[0].weight, source.net.backbone.body[0].weight)
    assert model.net.roi_heads.box_predictor.cls_score.weight.shape == (4, 1024)
    assert "roi_heads.box_predictor.cls_score.weight: file (91, 1024) vs model (4, 1024)" in trainyard_log.text
    assert "roi_heads.box_predictor.bbox_pred.weight" in trainyard_log.text


def test_an_unknown_argument_lists_the_accepted_ones():
    with pytest.raises(ConfigError, match=r"FasterRCNN got unknown arguments \[.rpn_nms_treshold.\]; accepted: .*min_size.*rpn_nms_thresh"):
        MODELS.build(dict(type="FasterRCNN", backbone=dict(type="SmallDetBackbone"), num_classes=3, rpn_nms_treshold=0.5))


def test_ssdlite_refuses_min_size():
    with pytest.raises(ConfigError, match="SSDlite does not take min_size"):
        MODELS.build(dict(type="SSDlite", num_classes=3, min_size=64))


def test_weights_backbone_keeps_torchvision_builder_semantics_frozen_norm_and_three_trainable_layers(tmp_path, monkeypatch):
    weights = torchvision.models.resnet50().state_dict()
    place_in_torch_hub_cache(tmp_path, torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url, weights)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("TRAINYARD_OFFLINE", "1")
    body = MODELS.build(dict(type="FasterRCNN", num_classes=3, weights_backbone="IMAGENET1K_V1", **SMALL)).net.backbone.body
    assert isinstance(body.bn1, FrozenBatchNorm2d) and torch.equal(body.layer3[0].conv1.weight, weights["layer3.0.conv1.weight"])
    trainable = {name.split(".")[0] for name, p in body.named_parameters() if p.requires_grad}
    assert trainable == {"layer2", "layer3", "layer4"}


def test_whole_detector_weights_rebuild_the_class_head_for_the_class_count(tmp_path, monkeypatch, trainyard_log):
    coco = detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=91).state_dict()
    place_in_torch_hub_cache(tmp_path, detection.SSDLite320_MobileNet_V3_Large_Weights.COCO_V1.url, coco)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("TRAINYARD_OFFLINE", "1")
    model = MODELS.build(dict(type="SSDlite", num_classes=3, weights="COCO_V1"))
    assert model.net.head.classification_head.num_columns == 4  # three classes and background
    assert torch.equal(model.net.backbone.features[0][0][0].weight, coco["backbone.features.0.0.0.weight"])
    assert torch.equal(model.net.head.classification_head.module_list[0][0][0].weight, coco["head.classification_head.module_list.0.0.0.weight"])
    assert "rebuilt for 4 classes: 36 keys loaded, 0 missing, 0 unexpected, 12 re-initialised" in trainyard_log.text
