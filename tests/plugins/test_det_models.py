"""Detectors on tiny batches: loss and predict modes, boxes in original pixels, local weights."""

import pytest
import torch
from torch import nn

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
