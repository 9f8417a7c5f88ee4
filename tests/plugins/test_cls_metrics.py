"""Accuracy and the classification report against hand-computed values, on one and two processes."""

import pytest
import torch
from conftest import free_port

from trainyard import METRICS, ModelContractError


def logits_for(ranking):
    """Logits whose descending order per row is ``ranking`` (a list of class lists)."""
    count = len(ranking[0])
    logits = torch.zeros(len(ranking), count)
    for row, order in enumerate(ranking):
        for place, cls in enumerate(order):
            logits[row, cls] = float(count - place)
    return logits


def test_topk_accuracy_by_hand():
    metric = METRICS.build(dict(type="Accuracy", topk=(1, 2)))
    # true classes 0, 1, 2, 2: top-1 right for rows 0 and 3; top-2 also for row 1
    logits = logits_for([[0, 1, 2, 3], [2, 1, 0, 3], [0, 1, 3, 2], [2, 0, 1, 3]])
    metric.process({"targets": torch.tensor([0, 1, 2, 2])}, logits)
    assert metric.compute() == {"accuracy_top1": 0.5, "accuracy_top2": 0.75}


def test_accuracy_leaves_out_a_k_not_below_the_class_count(trainyard_log):
    metric = METRICS.build(dict(type="Accuracy", topk=(1, 5)))
    metric.process({"targets": torch.tensor([0, 1])}, logits_for([[0, 1, 2], [0, 1, 2]]))
    assert metric.compute() == {"accuracy_top1": 0.5}
    assert "top-5 left out: there are only 3 classes" in trainyard_log.text


def test_report_precision_recall_f1_and_macro_by_hand(trainyard_log):
    metric = METRICS.build(dict(type="ClassificationReport"))
    metric.dataset_meta = {"classes": ("cat", "dog", "fox")}
    metric.reset()
    # true:      cat cat cat dog dog fox
    # predicted: cat cat dog dog cat cat
    targets = torch.tensor([0, 0, 0, 1, 1, 2])
    predicted = [0, 0, 1, 1, 0, 0]
    metric.process({"targets": targets}, torch.nn.functional.one_hot(torch.tensor(predicted), 3).float())
    results = metric.compute()
    # cat: precision 2/4, recall 2/3, f1 4/7; dog: 1/2, 1/2, 1/2; fox: never predicted -> 0, 0, 0
    assert results["precision.cat"] == pytest.approx(0.5) and results["recall.cat"] == pytest.approx(2 / 3)
    assert results["f1.cat"] == pytest.approx(4 / 7) and results["f1.dog"] == pytest.approx(0.5)
    assert results["precision.fox"] == 0.0 and results["recall.fox"] == 0.0
    assert results["macro_precision"] == pytest.approx(1 / 3)
    assert results["macro_recall"] == pytest.approx((2 / 3 + 1 / 2) / 3)
    assert results["macro_f1"] == pytest.approx((4 / 7 + 1 / 2) / 3)
    assert metric.state["confusion"].tolist() == [[2, 1, 0], [1, 1, 0], [1, 0, 0]]
    assert "fox" in trainyard_log.text and "macro avg" in trainyard_log.text


def test_report_macro_average_skips_classes_neither_labelled_nor_predicted():
    metric = METRICS.build(dict(type="ClassificationReport", num_classes=3))
    metric.reset()
    metric.process({"targets": torch.tensor([0, 1])}, logits_for([[0, 1, 2], [1, 0, 2]]))
    assert metric.compute()["macro_f1"] == 1.0


def test_report_draws_the_confusion_matrix_as_a_picture():
    metric = METRICS.build(dict(type="ClassificationReport", class_names=["a", "b"]))
    metric.reset()
    metric.process({"targets": torch.tensor([0, 1, 1])}, logits_for([[0, 1], [0, 1], [1, 0]]))
    metric.compute()
    picture = metric.pictures()["confusion_matrix"]
    assert picture.dtype == torch.uint8 and picture.shape[0] == 3 and min(picture.shape[1:]) > 100


def test_predictions_that_are_not_logits_are_a_clear_error():
    metric = METRICS.build(dict(type="Accuracy"))
    with pytest.raises(ModelContractError, match=r"logits \[B, K\]"):
        metric.process({"targets": torch.tensor([0, 1])}, torch.tensor([0, 1]))


SCORES = torch.randn(11, 5, generator=torch.Generator().manual_seed(0))
LABELS = torch.randint(5, (11,), generator=torch.Generator().manual_seed(1))
CONFIGS = [dict(type="Accuracy", topk=(1, 3)), dict(type="ClassificationReport", num_classes=5)]


def evaluate(indices):
    from trainyard.evaluation import Evaluator

    evaluator = Evaluator([METRICS.build(cfg) for cfg in CONFIGS])
    evaluator.reset()
    for start in range(0, len(indices), 3):
        part = indices[start : start + 3]
        evaluator.process({"targets": LABELS[part]}, SCORES[part])
    return evaluator.evaluate()


def _rank_main(rank, port, queue):
    import torch.distributed

    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        queue.put((rank, evaluate(list(range(rank, 11, 2)))))  # uneven shards: 6 and 5 samples
    finally:
        torch.distributed.destroy_process_group()


def test_two_gloo_processes_give_the_single_process_numbers():
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    queue, port = context.Queue(), free_port()
    processes = [context.Process(target=_rank_main, args=(rank, port, queue)) for rank in range(2)]
    for process in processes:
        process.start()
    results = dict(queue.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    single = evaluate(list(range(11)))
    assert results[0] == single and results[1] == single

