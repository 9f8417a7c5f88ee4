"""Confusion matrices for every task: images (classification), pixels (segmentation), boxes with background (detection)."""

from __future__ import annotations

import pytest
import torch

from trainyard import draw_confusion_matrix


def _image(annotations, detections):
    return {"annotations": [{"bbox": box, "category_id": category, "iscrowd": crowd} for box, category, crowd in annotations],
            "detections": [{"bbox": box, "category_id": category, "score": score} for box, category, score in detections]}


def test_detection_matrix_counts_hits_confusions_misses_and_false_positives_as_mmdet():
    from trainyard_det.confusion_matrix import detection_confusion_matrix

    cat, dog = 3, 7  # COCO-style category ids, not labels
    image = _image(
        annotations=[([0, 0, 10, 10], cat, 0), ([20, 20, 10, 10], dog, 0), ([60, 60, 8, 8], cat, 1)],
        detections=[([0, 0, 10, 10], cat, 0.9),     # hit
                    ([21, 21, 10, 10], cat, 0.8),   # the dog taken for a cat; the dog is then missed
                    ([40, 40, 5, 5], dog, 0.7),     # on nothing: a false positive
                    ([0, 0, 10, 10], dog, 0.1),     # under the score threshold: not counted
                    ([60, 60, 8, 8], cat, 0.9)],    # on a crowd box, which is no object: a false positive
    )
    confusion = detection_confusion_matrix([image], [cat, dog], score_thr=0.3, iou_thr=0.5)
    assert confusion.tolist() == [
        [1, 0, 0],   # true cat: found as cat
        [1, 0, 1],   # true dog: taken for a cat, and missed
        [1, 1, 0],   # background: a cat and a dog detected on nothing
    ]


def test_detection_matrix_of_an_image_without_boxes_or_detections_is_empty():
    from trainyard_det.confusion_matrix import detection_confusion_matrix

    assert detection_confusion_matrix([_image([], [])], [1, 2]).sum() == 0
    assert detection_confusion_matrix([_image([([0, 0, 4, 4], 2, 0)], [])], [1, 2]).tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 0]]


def test_coco_metric_draws_the_box_confusion_matrix_with_a_background_row():
    from trainyard_det.metrics import CocoMetric

    metric = CocoMetric()
    metric.dataset_meta = {"classes": ("cat", "dog"), "category_ids": (3, 7)}
    metric.results = [{"image_id": 1, "height": 64, "width": 64, **_image([([0, 0, 10, 10], 3, 0)], [([0, 0, 10, 10], 7, 0.9)])}]
    picture = metric.pictures()["confusion_matrix"]
    assert picture.dtype == torch.uint8 and picture.shape[0] == 3 and min(picture.shape[1:]) > 200
    assert CocoMetric(format_only=True).pictures() == {}


def test_segmentation_matrix_is_normalised_per_true_class():
    from trainyard_seg.metrics import IoUMetric

    metric = IoUMetric(class_names=["sky", "road", "car"])
    targets = torch.tensor([[[0, 0, 1, 1], [2, 2, 2, 255]]])
    metric.process({"targets": targets}, torch.tensor([[[0, 1, 1, 1], [2, 2, 0, 0]]]))
    small = metric.pictures()["confusion_matrix"]
    metric.state["confusion"] *= 1000  # the same shares of far more pixels
    large = metric.pictures()["confusion_matrix"]
    assert torch.equal(small, large)


def test_picture_says_counts_or_shares_and_refuses_anything_else():
    confusion = torch.tensor([[5, 1], [0, 3]])
    counts = draw_confusion_matrix(confusion, ["a", "b"], title="t")
    shares = draw_confusion_matrix(confusion, ["a", "b"], text="percent", title="t")
    assert counts.shape == shares.shape and not torch.equal(counts, shares)
    with pytest.raises(ValueError, match="'count' or 'percent'"):
        draw_confusion_matrix(confusion, ["a", "b"], text="fraction")
