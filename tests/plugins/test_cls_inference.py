"""Classification predictions on the user's own images: the class and top-k scores, records and pictures."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import write_images
from PIL import Image

from trainyard import Predictor, cli

CLASSES = {"disc", "square", "triangle", "ring", "cross", "diamond"}


@pytest.fixture(scope="module")
def predictor(quick_run):
    """From the run directory (``work_dir/<timestamp>``), as a user would point at it."""
    (run_dir,) = [p for p in quick_run("cls").iterdir() if p.is_dir()]
    return Predictor.from_run(run_dir, device="cpu")


def test_each_image_gets_its_class_and_the_top_k_scores(predictor, tmp_path):
    write_images(tmp_path)
    results = predictor(tmp_path, topk=3)
    assert len(results) == 4
    for result in results:
        scores = [entry["score"] for entry in result["topk"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
        assert result["class"] == result["topk"][0]["class"] in CLASSES and result["score"] == scores[0]


def test_scores_are_the_softmax_of_the_models_logits(predictor):
    from trainyard_cls.datasets.generated import GeneratedClsDataset

    image = GeneratedClsDataset(split="test", length=3, size=32)[2]["inputs"]
    batch = predictor.model.data_preprocessor({"inputs": image[None]})
    with torch.inference_mode():
        expected = predictor.model(batch, mode="predict").softmax(dim=1)[0]
    result = predictor(image, topk=6)[0]
    assert [entry["label"] for entry in result["topk"]] == expected.argsort(descending=True).tolist()
    assert result["topk"][0]["score"] == pytest.approx(expected.max().item(), abs=1e-6)


def test_predict_command_writes_captioned_pictures_and_records(quick_run, tmp_path):
    sizes = write_images(tmp_path / "images")
    out = tmp_path / "out"
    assert cli.main(["predict", str(quick_run("cls")), str(tmp_path / "images"), "--out", str(out), "--topk", "2", "--quiet"]) == 0
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == len(sizes)
    for record in records:
        assert record["class"] in CLASSES and len(record["topk"]) == 2
        with Image.open(out / record["picture"]) as picture:
            assert min(picture.size) >= 256  # small images are enlarged so the caption stays readable


def test_visualization_grid_samples_every_class_with_a_fixed_seed(monkeypatch):
    from types import SimpleNamespace

    import torch
    import trainyard_cls.visualization as visualization

    drawn = []  # (true classes, the images' dataset indices) of each grid
    monkeypatch.setattr(visualization, "prediction_grid",
                        lambda images, predicted, true, classes, tile: drawn.append((true, images[:, 0, 0, 0].tolist())) or images[0])
    runner = SimpleNamespace(rank=0, iter=0, dataloader=lambda split: SimpleNamespace(dataset=[0] * 64),
                             writer=SimpleNamespace(add_picture=lambda *args: None))
    labels = torch.arange(4).repeat_interleave(16)  # a class-sorted folder: 16 images of each class in turn

    def one_pass(batch_size: int) -> None:
        hook.before_val_epoch(runner)
        for start in range(0, 64, batch_size):
            indices = torch.arange(start, start + batch_size)
            batch = {"inputs": indices.to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 8, 8).contiguous(),
                     "targets": labels[indices], "meta": [{"index": int(i)} for i in indices]}
            hook.after_val_iter(runner, start // batch_size, batch, torch.nn.functional.one_hot(batch["targets"], 4).float())
        hook.after_val_epoch(runner)

    hook = visualization.ClsVisualizationHook(max_images=8)
    one_pass(4)
    one_pass(16)
    assert drawn[0] == drawn[1]  # the same images, whatever the batch size
    true, indices = drawn[0]
    assert true == [0, 0, 1, 1, 2, 2, 3, 3] and [i // 16 for i in indices] == true and indices != [0, 1, 16, 17, 32, 33, 48, 49]
    hook.seed = 1
    one_pass(8)
    assert drawn[2][1] != indices  # another seed, other images
