"""IoUMetric against values computed by hand."""

import math

import pytest
import torch

from trainyard import METRICS


def test_iou_accuracy_and_means_by_hand():
    metric = METRICS.build(dict(type="IoUMetric", num_classes=3, class_names=["bg", "a", "b"]))
    targets = torch.tensor([[[0, 0, 1, 1], [0, 1, 1, 255], [2, 2, 255, 255]]])
    predictions = torch.tensor([[[0, 1, 1, 1], [0, 1, 0, 2], [2, 0, 1, 1]]])
    metric.process({"targets": targets}, predictions)
    results = metric.compute()
    # counted pixels (label != 255): bg: 3 (2 right), a: 4 (3 right), b: 2 (1 right); predicted bg 4, a 4, b 1
    assert results["IoU.bg"] == pytest.approx(2 / (3 + 4 - 2))
    assert results["IoU.a"] == pytest.approx(3 / (4 + 4 - 3))
    assert results["IoU.b"] == pytest.approx(1 / (2 + 1 - 1))
    assert results["Acc.a"] == pytest.approx(3 / 4)
    assert results["mIoU"] == pytest.approx((2 / 5 + 3 / 5 + 1 / 2) / 3)
    assert results["aAcc"] == pytest.approx(6 / 9)


def test_class_absent_from_labels_and_predictions_is_left_out_of_the_mean():
    metric = METRICS.build(dict(type="IoUMetric", num_classes=3))
    metric.process({"targets": torch.tensor([[[0, 1], [1, 0]]])}, torch.tensor([[[0, 1], [0, 0]]]))
    results = metric.compute()
    assert math.isnan(results["IoU.2"])
    assert results["mIoU"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_accumulates_over_batches_and_lists():
    metric = METRICS.build(dict(type="IoUMetric", num_classes=2, per_class=False))
    metric.process({"targets": [torch.tensor([[0, 1]]), torch.tensor([[1, 1, 1]])]}, [torch.tensor([[0, 1]]), torch.tensor([[1, 0, 1]])])
    results = metric.compute()
    assert set(results) == {"mIoU", "mAcc", "aAcc"}
    assert results["aAcc"] == pytest.approx(4 / 5)


def test_shape_mismatch_is_a_clear_error():
    from trainyard import ModelContractError

    metric = METRICS.build(dict(type="IoUMetric", num_classes=2))
    with pytest.raises(ModelContractError, match="prediction shape \\(1, 2, 2\\) differs from label shape \\(1, 4, 4\\)"):
        metric.process({"targets": torch.zeros(1, 4, 4, dtype=torch.long)}, torch.zeros(1, 2, 2, dtype=torch.long))


def test_class_names_come_from_the_dataset_metainfo():
    metric = METRICS.build(dict(type="IoUMetric"))
    metric.dataset_meta = {"classes": ("sky", "road")}
    metric.reset()
    metric.process({"targets": torch.tensor([[0, 1, 1]])}, torch.tensor([[0, 1, 0]]))
    results = metric.compute()
    assert results["IoU.sky"] == pytest.approx(1 / 2) and results["IoU.road"] == pytest.approx(1 / 2)


def test_num_classes_that_disagrees_with_the_dataset_is_a_clear_error():
    from trainyard import ModelContractError

    metric = METRICS.build(dict(type="IoUMetric", num_classes=3))
    metric.dataset_meta = {"classes": ("sky", "road")}
    with pytest.raises(ModelContractError, match="num_classes=3 but the dataset lists 2 classes"):
        metric.reset()


def test_no_classes_anywhere_is_a_clear_error():
    from trainyard import ModelContractError

    metric = METRICS.build(dict(type="IoUMetric"))
    with pytest.raises(ModelContractError, match="lists no classes; give the metric num_classes or class_names"):
        metric.process({"targets": torch.zeros(1, 2, dtype=torch.long)}, torch.zeros(1, 2, dtype=torch.long))
