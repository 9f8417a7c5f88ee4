"""Detection test-time augmentation: every view's boxes in original pixels, merged by NMS per class."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from trainyard import ConfigError, MODELS, Predictor, cli
from trainyard.tta import tta_views


class OneObject(nn.Module):
    """Finds the one object of the test image, bright at its left edge, in the original image's pixels.

    It sees whether the image came mirrored (the bright edge on the right) and reports the
    object where a mirrored image shows it; it records the image sizes it saw. A full-size
    view scores higher than a scaled one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def forward(self, batch, mode="predict"):
        outputs = []
        for image, meta in zip(batch["inputs"], batch["meta"]):
            self.seen.append(tuple(image.shape[-2:]))
            width = meta["ori_size"][1]
            mirrored = image[0, :, -1].sum() > image[0, :, 0].sum()
            box = torch.tensor([[width - 30.0, 20.0, width - 10.0, 60.0]]) if mirrored else torch.tensor([[10.0, 20.0, 30.0, 60.0]])
            score = 0.9 if image.shape[-1] == width else 0.5
            outputs.append({"boxes": box, "scores": torch.tensor([score]), "labels": torch.tensor([1])})
        return outputs


def object_image() -> torch.Tensor:
    image = torch.zeros(3, 100, 200)
    image[:, :, :20] = 1
    return image


def test_flipped_boxes_are_mirrored_back_and_merged_by_nms_per_class():
    module = OneObject()
    tta = MODELS.build(dict(type="DetTTAModel", module=module, scales=[0.5, 1.0], flip=True,
                            tta_cfg=dict(nms=dict(type="nms", iou_threshold=0.5), max_per_img=10)))
    (result,) = tta({"inputs": [object_image()], "meta": [{"ori_size": (100, 200)}]})
    assert module.seen == [(50, 100), (50, 100), (100, 200), (100, 200)]  # no internal resize: the images are scaled
    assert result["boxes"].tolist() == [[10.0, 20.0, 30.0, 60.0]]  # four views of one object: one box, the best score
    assert result["scores"].tolist() == [pytest.approx(0.9)] and result["labels"].tolist() == [1]


def test_boxes_of_different_classes_are_all_kept():
    module = OneObject()
    tta = MODELS.build(dict(type="DetTTAModel", module=module, scales=[1.0], flip=True))
    original = module.forward
    module.forward = lambda batch, mode="predict": [{**o, "labels": o["labels"] + int(len(module.seen) > 1)} for o in original(batch)]
    (result,) = tta({"inputs": [object_image()], "meta": [{"ori_size": (100, 200)}]})
    assert sorted(result["labels"].tolist()) == [1, 2]


def test_mmdet_tta_cfg_is_read_and_other_merges_are_refused():
    tta = MODELS.build(dict(type="DetTTAModel", module=OneObject(), tta_cfg=dict(nms=dict(type="nms", iou_threshold=0.6), max_per_img=5)))
    assert (tta.iou_threshold, tta.max_per_img) == (0.6, 5)
    with pytest.raises(ConfigError, match="only 'nms'"):
        MODELS.build(dict(type="DetTTAModel", module=OneObject(), tta_cfg=dict(nms=dict(type="soft_nms", iou_threshold=0.5))))


def test_a_scaled_view_scales_the_torchvision_detectors_own_resize_and_restores_it(quick_run):
    predictor = Predictor.from_run(quick_run("det"), device="cpu", tta=True)
    transform = predictor.model.module.net.transform
    seen = []
    hook = predictor.model.module.net.backbone.register_forward_hook(lambda m, args, output: seen.append(tuple(args[0].shape[-2:])))
    predictor.model.views = tta_views([0.5, 1.0], flip=False)
    predictor(torch.randint(0, 255, (3, 128, 128), dtype=torch.uint8), score_thr=0.0)
    hook.remove()
    assert seen == [(64, 64), (128, 128)]
    assert (transform.min_size, transform.max_size) == ((128,), 128)


def test_test_command_with_tta_writes_coco_metrics(quick_run, tmp_path):
    out = tmp_path / "metrics.json"
    assert cli.main(["test", str(quick_run("det")), "--tta", "--work-dir", str(tmp_path / "eval"), "--out", str(out),
                     "--cfg-options", "test_dataloader.dataset.length=4", "custom_hooks=[]",
                     "tta_model=dict(type='DetTTAModel', scales=[0.75, 1.0], flip=True)"]) == 0
    assert "bbox_mAP" in json.loads(out.read_text())


def test_a_detection_wrapper_around_a_model_giving_class_logits_is_one_clear_error():
    class Classifier(nn.Module):
        def forward(self, batch, mode="predict"):
            return batch["inputs"].mean(dim=(2, 3))

    tta = MODELS.build(dict(type="DetTTAModel", module=Classifier()))
    with pytest.raises(ConfigError, match="tta_model.type DetTTAModel reads per-image dicts .* use the wrapper of the model's task"):
        tta({"inputs": torch.zeros(2, 3, 8, 8), "meta": [{}, {}]}, mode="predict")
