"""Detection predictions on the user's own images: boxes in original pixels, records, pictures."""

from __future__ import annotations

import json

import pytest
from conftest import write_images

from trainyard import Predictor, cli


@pytest.fixture(scope="module")
def predictor(quick_run):
    predictor = Predictor.from_run(quick_run("det"), device="cpu")
    predictor.model.net.roi_heads.score_thresh = 0.0  # a model trained for 4 iterations scores every box low
    return predictor


def test_boxes_are_in_the_original_images_pixels(predictor, tmp_path):
    sizes = write_images(tmp_path)
    results = predictor(sorted(tmp_path.iterdir()), score_thr=0.0)
    for name, result in zip(sorted(sizes), results):
        height, width = sizes[name]
        boxes = result["boxes"]
        assert len(boxes) and len(boxes) == len(result["scores"]) == len(result["labels"]) == len(result["classes"])
        assert boxes[:, 0::2].min() >= 0 and boxes[:, 0::2].max() <= width + 1e-3
        assert boxes[:, 1::2].min() >= 0 and boxes[:, 1::2].max() <= height + 1e-3
        assert set(result["classes"]) <= {"ellipse", "rectangle", "triangle"}
    large = results[sorted(sizes).index("large.png")]
    assert large["boxes"][:, 2].max() > 128  # the model saw it at 128 px wide: boxes were scaled back to 224


def test_score_threshold_filters_the_results(predictor, tmp_path):
    write_images(tmp_path)
    everything = predictor(tmp_path / "large.png", score_thr=0.0)[0]
    threshold = everything["scores"].median().item()
    kept = predictor(tmp_path / "large.png", score_thr=threshold)[0]
    assert len(kept["scores"]) == int((everything["scores"] >= threshold).sum()) and kept["scores"].min() >= threshold


def test_predict_command_writes_boxes_and_pictures(quick_run, tmp_path):
    write_images(tmp_path / "images")
    out = tmp_path / "out"
    status = cli.main(["predict", "configs/det/faster_rcnn_small_generated.py", str(quick_run("det") / "iter_4.pth"),
                       str(tmp_path / "images" / "large.png"), str(tmp_path / "images" / "grey.png"), "--out", str(out),
                       "--score-thr", "0.0", "--quiet"])
    assert status == 0
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["source"].rsplit("/", 1)[1] for r in records] == ["large.png", "grey.png"]
    for record in records:
        assert {"boxes", "scores", "labels", "classes"} <= set(record) and (out / record["picture"]).is_file()
        assert all(len(box) == 4 for box in record["boxes"])


def test_detection_picture_colours_boxes_by_class_and_leaves_out_low_scores():
    import torch
    from trainyard_det.visualization import class_colour, draw_detections

    image = torch.full((3, 64, 64), 40, dtype=torch.uint8)
    truth = {"boxes": torch.tensor([[8.0, 8, 40, 40]]), "labels": torch.tensor([1])}
    confident = {"boxes": torch.tensor([[9.0, 9, 41, 41]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([1])}
    with_low = {key: torch.cat([value, extra]) for (key, value), extra in
                zip(confident.items(), [torch.tensor([[20.0, 20, 60, 60]]), torch.tensor([0.1]), torch.tensor([0])])}
    picture = draw_detections(image, with_low, truth, ["cat", "dog"], score_thr=0.3)
    assert torch.equal(picture, draw_detections(image, confident, truth, ["cat", "dog"], score_thr=0.3))
    colours = set(map(tuple, picture.flatten(1).T.tolist()))
    assert class_colour(1) in colours and class_colour(0) not in colours  # the dog's colour, in both panels and the legend
    alone = draw_detections(image, confident, None, ["cat", "dog"])
    assert picture.shape[-1] > 2 * 384 > alone.shape[-1]  # ground truth and predictions side by side; predictions alone
