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
