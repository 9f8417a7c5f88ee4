"""CocoMetric against pycocotools' COCOeval run directly, on one and two processes."""

import contextlib
import io

import pytest
import torch
from conftest import free_port
from test_det_datasets import coco, coco_tree

from trainyard import DATASETS, METRICS


def evaluate(dataset, predictions_of, indices=None):
    from trainyard.evaluation import Evaluator

    evaluator = Evaluator([METRICS.build(dict(type="CocoMetric"))])
    evaluator.set_dataset_meta(dataset.metainfo)
    evaluator.reset()
    for index in indices if indices is not None else range(len(dataset)):
        item = dataset[index]
        evaluator.process({"meta": [item["meta"]]}, [predictions_of(item)])
    return evaluator.evaluate()


def perfect(item):
    labels = item["targets"]["labels"]
    return {"boxes": item["targets"]["boxes"], "scores": torch.ones(len(labels)), "labels": labels}


def test_perfect_predictions_give_map_one():
    dataset = DATASETS.build(dict(type="GeneratedDetDataset", length=12, size=64))
    results = evaluate(dataset, perfect)
    assert results["bbox_mAP"] == 1.0 and results["bbox_mAP_50"] == 1.0 and results["bbox_AR_100"] == 1.0


SHIFTED = {  # per image id: detections in COCO form (xywh, original category ids)
    10: [([7, 6, 20, 10], 3, 0.9), ([30, 10, 25, 25], 7, 0.8), ([0, 20, 10, 10], 3, 0.3)],
    11: [([1, 1, 28, 30], 7, 0.7), ([42, 21, 10, 10], 3, 0.6)],
    12: [([5, 5, 5, 5], 7, 0.2)],
}


def shifted(item):
    rows = SHIFTED[item["meta"]["image_id"]]
    boxes = torch.tensor([[x, y, x + w, y + h] for (x, y, w, h), _, _ in rows], dtype=torch.float32)
    label_of = {3: 0, 7: 1}
    return {"boxes": boxes, "scores": torch.tensor([s for _, _, s in rows]), "labels": torch.tensor([label_of[c] for _, c, _ in rows])}


def cocoeval_directly(ann_file):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    detections = [{"image_id": image_id, "bbox": box, "category_id": category, "score": score}
                  for image_id, rows in SHIFTED.items() for box, category, score in rows]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        evaluation = COCOeval(gt, gt.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats


def test_shifted_boxes_give_exactly_what_cocoeval_gives_on_the_same_json(tmp_path):
    ann_file = coco_tree(tmp_path)  # non-contiguous ids, a crowd box, a degenerate box, an image without boxes
    results = evaluate(coco(ann_file, filter_empty_gt=False), shifted)
    stats = cocoeval_directly(ann_file)
    names = ["bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l",
             "bbox_AR_1", "bbox_AR_10", "bbox_AR_100", "bbox_AR_s", "bbox_AR_m", "bbox_AR_l"]
    assert [results[name] for name in names] == pytest.approx(list(stats), abs=0, rel=0)
    assert 0 < results["bbox_mAP"] < 1


def nothing_detected(item):
    return {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}


def test_no_detections_report_the_same_keys_as_detections_with_per_class_zeros(tmp_path):
    dataset = coco(coco_tree(tmp_path), filter_empty_gt=False)  # 'cat' and 'dog' have boxes
    empty = evaluate(dataset, nothing_detected)
    assert list(empty) == list(evaluate(dataset, shifted))
    assert empty["bbox_AP.cat"] == empty["bbox_AP.dog"] == 0.0


def test_an_image_evaluated_twice_is_an_error():
    from trainyard import ModelContractError

    dataset = DATASETS.build(dict(type="GeneratedDetDataset", length=2, size=64))
    with pytest.raises(ModelContractError, match="image id 0 was evaluated twice"):
        evaluate(dataset, perfect, indices=[0, 0, 1])


def _rank_main(rank, port, ann_file, queue):
    import torch.distributed

    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        dataset = coco(ann_file, filter_empty_gt=False)
        queue.put((rank, evaluate(dataset, shifted, indices=list(range(rank, len(dataset), 2)))))
    finally:
        torch.distributed.destroy_process_group()


def test_two_gloo_processes_give_the_single_process_numbers(tmp_path):
    import torch.multiprocessing as mp

    ann_file = coco_tree(tmp_path)
    single = evaluate(coco(ann_file, filter_empty_gt=False), shifted)
    context = mp.get_context("spawn")
    queue, port = context.Queue(), free_port()
    processes = [context.Process(target=_rank_main, args=(rank, port, ann_file, queue)) for rank in range(2)]
    for process in processes:
        process.start()
    results = dict(queue.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    assert results[0] == single and results[1] == single


def test_the_faster_coco_eval_backend_gives_the_numbers_of_pycocotools(tmp_path):
    pytest.importorskip("faster_coco_eval", reason="faster-coco-eval is not installed (pip install 'trainyard[det]')")
    from trainyard.evaluation import Evaluator

    dataset = coco(coco_tree(tmp_path), filter_empty_gt=False)
    results = {}
    for backend in ("pycocotools", "faster_coco_eval"):
        evaluator = Evaluator([METRICS.build(dict(type="CocoMetric", backend=backend))])
        evaluator.set_dataset_meta(dataset.metainfo)
        evaluator.reset()
        for index in range(len(dataset)):
            item = dataset[index]
            evaluator.process({"meta": [item["meta"]]}, [shifted(item)])
        results[backend] = evaluator.evaluate()
    assert results["faster_coco_eval"] == pytest.approx(results["pycocotools"], abs=1e-12)


def test_a_missing_backend_names_what_to_install(monkeypatch):
    import sys

    from trainyard import ConfigError

    monkeypatch.setitem(sys.modules, "faster_coco_eval", None)
    with pytest.raises(ConfigError, match="pip install faster-coco-eval"):
        METRICS.build(dict(type="CocoMetric", backend="faster_coco_eval"))
