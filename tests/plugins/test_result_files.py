"""``trainyard test --dump DIR --show-dir DIR``: every prediction in the field's file format, and a picture of each image."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch

from trainyard import cli


def test_detection_dump_is_a_coco_results_file_whose_cocoeval_equals_the_logged_metric(quick_run, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from trainyard_det.datasets.generated import GeneratedDetDataset

    run = quick_run("det")
    status = cli.main(["test", str(run), "--dump", str(tmp_path / "dump"), "--show-dir", str(tmp_path / "show"),
                       "--out", str(tmp_path / "metrics.json"), "--work-dir", str(tmp_path / "eval"),
                       "--cfg-options", "model.score_thresh=0.0"])
    assert status == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    detections = json.loads((tmp_path / "dump" / "results.bbox.json").read_text())
    assert detections and {"image_id", "category_id", "bbox", "score"} == set(detections[0])

    test_set = GeneratedDetDataset(split="test", length=4, size=128)  # the quick run's test set, as COCO files
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(test_set.export_coco(tmp_path / "coco")))
        evaluation = COCOeval(truth, truth.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert {d["image_id"] for d in detections} <= set(truth.getImgIds())
    assert evaluation.stats[0] == pytest.approx(metrics["bbox_mAP"], abs=1e-12)
    assert evaluation.stats[1] == pytest.approx(metrics["bbox_mAP_50"], abs=1e-12)
    assert len(list((tmp_path / "show").glob("*.png"))) == 4


def test_format_only_writes_the_results_of_a_test_set_without_labels_and_evaluates_nothing(quick_run, tmp_path):
    from trainyard.config import load_config
    from trainyard.runner import Runner
    from trainyard_det.datasets.generated import GeneratedDetDataset

    ann_file = GeneratedDetDataset(split="test", length=3, size=128).export_coco(tmp_path / "coco")
    image_list = json.loads(ann_file.read_text())
    del image_list["annotations"]  # as COCO test-dev's image_info file
    (tmp_path / "coco" / "test_dev.json").write_text(json.dumps(image_list))
    (run_dir,) = [p for p in quick_run("det").iterdir() if p.is_dir()]
    cfg = load_config(run_dir / "config.py", [])
    cfg.work_dir = str(tmp_path / "eval")
    cfg.load_from = str(quick_run("det") / "iter_4.pth")
    cfg.model.score_thresh = 0.0
    cfg.test_dataloader.dataset = dict(type="CocoDetection", ann_file=str(tmp_path / "coco" / "test_dev.json"),
                                       data_prefix=str(tmp_path / "coco" / "images"), filter_empty_gt=False)
    cfg.test_evaluator = dict(type="CocoMetric", format_only=True)
    cfg.custom_hooks = [dict(type="ResultFilesHook", dump_dir=str(tmp_path / "dump"))]
    assert Runner.from_cfg(cfg).test() == {}
    detections = json.loads((tmp_path / "dump" / "results.bbox.json").read_text())
    assert detections and {d["image_id"] for d in detections} <= {image["id"] for image in image_list["images"]}


def test_detection_records_carry_the_original_image_id_and_category_ids(tmp_path):
    from trainyard_det.inference import DetTask

    task = DetTask({"classes": ("cat", "dog"), "category_ids": (3, 17)})
    result = {"boxes": torch.tensor([[1.0, 2.0, 11.0, 22.0]]), "scores": torch.tensor([0.5]), "labels": torch.tensor([1])}
    record = task.result_record(result, {"index": 0, "image_id": 4242}, tmp_path, "x")
    assert record["detections"] == [{"image_id": 4242, "category_id": 17, "bbox": [1.0, 2.0, 10.0, 20.0], "score": 0.5}]


def test_segmentation_dump_writes_the_evaluated_mask_of_every_image(quick_run, tmp_path):
    from trainyard import DATASETS, Predictor
    from trainyard_seg.inference import read_mask

    run = quick_run("seg")
    assert cli.main(["test", str(run), "--dump", str(tmp_path / "dump"), "--show-dir", str(tmp_path / "show"),
                     "--work-dir", str(tmp_path / "eval")]) == 0
    records = [json.loads(line) for line in (tmp_path / "dump" / "predictions.jsonl").read_text().splitlines()]
    assert [record["index"] for record in records] == list(range(8))
    predictor = Predictor.from_run(run, device="cpu")
    dataset = DATASETS.build(predictor.cfg.test_dataloader.dataset)
    for record in records[:2]:
        expected = predictor(dataset[record["index"]]["inputs"])[0]["mask"]
        assert torch.equal(read_mask(tmp_path / "dump" / record["mask_file"]), expected)
    assert len(list((tmp_path / "show").glob("*.png"))) == 8


def test_segmentation_masks_hold_the_label_ids_a_dataset_declares(tmp_path):
    from trainyard_seg.datasets.base import label_ids_of
    from trainyard_seg.datasets.cityscapes import LABEL_ID_TO_TRAIN_ID
    from trainyard_seg.inference import SegTask, read_mask

    label_ids = label_ids_of(LABEL_ID_TO_TRAIN_ID, 19)
    assert label_ids[:3] == (7, 8, 11) and label_ids[-1] == 33
    assert label_ids_of({1: 0, 2: 0, 3: 1}, 2) is None  # two file ids for one class: no way back
    task = SegTask({"classes": ("road", "sidewalk", "building"), "label_ids": label_ids[:3]})
    record = task.result_record({"mask": torch.tensor([[0, 1], [2, 2]])}, {"index": 5}, tmp_path, "frankfurt_000000")
    assert record["mask_file"] == "masks/frankfurt_000000.png"
    assert read_mask(tmp_path / record["mask_file"]).tolist() == [[7, 8], [11, 11]]


def test_classification_dump_lists_the_top_classes_of_every_image_in_dataset_order(quick_run, tmp_path):
    run = quick_run("cls")
    assert cli.main(["val", str(run), "--dump", str(tmp_path / "dump"), "--work-dir", str(tmp_path / "eval")]) == 0
    records = [json.loads(line) for line in (tmp_path / "dump" / "predictions.jsonl").read_text().splitlines()]
    assert [record["index"] for record in records] == list(range(16))
    for record in records:
        scores = [entry["score"] for entry in record["topk"]]
        assert len(scores) == 5 and scores == sorted(scores, reverse=True) and record["class"] == record["topk"][0]["class"]


def test_dump_into_a_file_is_one_line(quick_run, tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    assert cli.main(["test", str(quick_run("cls")), "--dump", str(tmp_path / "taken")]) != 0
    assert "--dump" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--dump", "--show-dir"])
def test_a_result_folder_that_cannot_be_created_is_one_line_before_evaluating(quick_run, tmp_path, capsys, option):
    (tmp_path / "taken").write_text("kept")
    assert cli.main(["test", str(quick_run("cls")), option, str(tmp_path / "taken" / "results"), "--work-dir", str(tmp_path / "eval")]) == 2
    error = capsys.readouterr().err.strip()
    assert option in error and "cannot be created or written" in error and "Traceback" not in error and len(error.splitlines()) == 1
    assert (tmp_path / "taken").read_text() == "kept" and not (tmp_path / "eval").exists()
