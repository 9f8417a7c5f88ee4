"""Detection readers on tiny COCO and VOC files the tests write, and the boxes through transforms."""

import json
import pytest
import torch
from PIL import Image

from trainyard import DATASETS, DatasetError


def coco_tree(tmp_path, annotations=None, images=None, categories=None):
    """Three images (the third without annotations) and categories with ids 3 and 7."""
    (tmp_path / "img").mkdir(exist_ok=True)
    images = images or [
        {"id": 10, "file_name": "a.png", "height": 40, "width": 60},
        {"id": 11, "file_name": "b.png", "height": 40, "width": 60},
        {"id": 12, "file_name": "c.png", "height": 40, "width": 60},
    ]
    for image in images:
        Image.new("RGB", (image["width"], image["height"]), (image["id"], 0, 0)).save(tmp_path / "img" / image["file_name"])
    annotations = annotations if annotations is not None else [
        {"id": 1, "image_id": 10, "category_id": 3, "bbox": [5, 5, 20, 10], "area": 150.0, "iscrowd": 0},
        {"id": 2, "image_id": 10, "category_id": 7, "bbox": [30, 10, 25, 25], "area": 500.0, "iscrowd": 0},
        {"id": 3, "image_id": 11, "category_id": 7, "bbox": [0, 0, 30, 30], "area": 900.0, "iscrowd": 1},
        {"id": 4, "image_id": 11, "category_id": 3, "bbox": [10, 10, 0, 8], "area": 0.0, "iscrowd": 0},
        {"id": 5, "image_id": 11, "category_id": 3, "bbox": [40, 20, 10, 10], "area": 100.0, "iscrowd": 0},
    ]
    categories = categories or [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def coco(path, **options):
    return DATASETS.build(dict(type="CocoDetection", ann_file=str(path), data_prefix=str(path.parent / "img"), **options))


def test_coco_maps_category_ids_to_contiguous_labels_in_id_order(tmp_path):
    dataset = coco(coco_tree(tmp_path))
    assert dataset.metainfo["classes"] == ("cat", "dog") and dataset.metainfo["category_ids"] == (3, 7)
    item = dataset[0]
    assert item["targets"]["labels"].tolist() == [0, 1]
    assert item["targets"]["boxes"].tolist() == [[5, 5, 25, 15], [30, 10, 55, 35]]
    assert item["targets"]["image_id"] == 10 and item["inputs"].shape == (3, 40, 60)


def test_crowd_and_degenerate_boxes_are_not_trained_on_but_kept_for_evaluation(tmp_path, trainyard_log):
    dataset = coco(coco_tree(tmp_path))
    assert "1 boxes of zero width or height are not trained on" in trainyard_log.text
    item = dataset[1]
    assert item["targets"]["boxes"].tolist() == [[40, 20, 50, 30]]
    assert [a["iscrowd"] for a in item["meta"]["annotations"]] == [1, 0, 0]


def test_images_without_boxes_are_kept_or_left_out_by_the_switch(tmp_path):
    path = coco_tree(tmp_path)
    assert len(coco(path, filter_empty_gt=True)) == 2
    kept = coco(path, filter_empty_gt=False)
    assert len(kept) == 3 and kept[2]["targets"]["boxes"].shape == (0, 4) and kept[2]["targets"]["labels"].shape == (0,)


def test_malformed_json_names_the_file(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text('{"images": [')
    with pytest.raises(DatasetError, match=r"ann\.json is not valid JSON"):
        coco(path)


def test_a_box_outside_the_image_names_the_annotation(tmp_path):
    bad = [{"id": 42, "image_id": 10, "category_id": 3, "bbox": [50, 5, 30, 10], "area": 300.0, "iscrowd": 0}]
    with pytest.raises(DatasetError, match=r"ann\.json: annotation 42 of image 10 .* outside the 60x40 image"):
        coco(coco_tree(tmp_path, annotations=bad))


def test_an_unknown_category_id_names_the_annotation(tmp_path):
    bad = [{"id": 9, "image_id": 10, "category_id": 5, "bbox": [1, 1, 3, 3], "area": 9.0, "iscrowd": 0}]
    with pytest.raises(DatasetError, match=r"annotation 9 has category id 5, not among the file's categories \[3, 7\]"):
        coco(coco_tree(tmp_path, annotations=bad))


def test_a_missing_image_is_an_error_when_the_dataset_is_built_naming_file_id_and_count(tmp_path):
    path = coco_tree(tmp_path)
    (tmp_path / "img" / "b.png").unlink()
    (tmp_path / "img" / "c.png").unlink()
    with pytest.raises(DatasetError, match=r"ann\.json: 2 of the 3 listed images are not on disk, the first: .*b\.png \(image id 11\)"):
        coco(path, filter_empty_gt=False)


def test_a_wrong_image_folder_is_reported_once_for_every_image(tmp_path):
    path = coco_tree(tmp_path)
    with pytest.raises(DatasetError, match=r"3 of the 3 listed images are not on disk.*check the image folder \(data_prefix\)"):
        DATASETS.build(dict(type="CocoDetection", ann_file=str(path), data_prefix=str(tmp_path / "nowhere")))


def test_image_file_names_in_sub_folders_are_found(tmp_path):
    images = [{"id": 10, "file_name": "a.png", "height": 40, "width": 60}]
    path = coco_tree(tmp_path, images=images, annotations=[])
    (tmp_path / "img" / "part1").mkdir()
    (tmp_path / "img" / "a.png").rename(tmp_path / "img" / "part1" / "a.png")
    content = json.loads(path.read_text())
    content["images"][0]["file_name"] = "part1/a.png"
    path.write_text(json.dumps(content))
    assert coco(path, filter_empty_gt=False)[0]["meta"]["file"].endswith("part1/a.png")


def test_an_image_removed_after_the_build_still_names_the_file_and_image_id(tmp_path):
    dataset = coco(coco_tree(tmp_path))
    (tmp_path / "img" / "b.png").unlink()
    with pytest.raises(DatasetError, match=r"image .*b\.png \(image id 11\) not found"):
        dataset[1]


def test_flip_and_resize_keep_the_boxes_on_the_objects(tmp_path):
    pipeline = [dict(type="RandomHorizontalFlip", p=1.0), dict(type="ResizeKeepRatio", scale=(120, 80))]
    item = coco(coco_tree(tmp_path), pipeline=pipeline)[0]
    assert item["inputs"].shape == (3, 80, 120)
    # flipped in a 60-wide image, then scaled by 2
    assert item["targets"]["boxes"].tolist() == [[70, 10, 110, 30], [10, 20, 60, 70]]
    assert item["meta"]["ori_size"] == (40, 60)


def write_voc(root, name, objects, size=(50, 70)):
    voc = root / "VOC2007"
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size[1], size[0])).save(voc / "JPEGImages" / f"{name}.jpg")
    body = "".join(
        f"<object><name>{cls}</name><difficult>{difficult}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for cls, difficult, b in objects
    )
    (voc / "Annotations" / f"{name}.xml").write_text(
        f"<annotation><size><width>{size[1]}</width><height>{size[0]}</height><depth>3</depth></size>{body}</annotation>")
    with open(voc / "ImageSets" / "Main" / "test.txt", "a") as split:
        split.write(name + "\n")


def test_voc_reads_xml_boxes_zero_based_and_difficult_objects_as_crowd(tmp_path):
    write_voc(tmp_path, "000001", [("dog", 0, (11, 21, 40, 45)), ("person", 1, (1, 1, 10, 10))])
    dataset = DATASETS.build(dict(type="VOCDetection", data_root=str(tmp_path), split="test"))
    item = dataset[0]
    assert item["targets"]["boxes"].tolist() == [[10, 20, 40, 45]]
    assert item["targets"]["labels"].tolist() == [dataset.classes.index("dog")]
    assert [a["iscrowd"] for a in item["meta"]["annotations"]] == [0, 1]


def test_voc_unknown_class_names_the_xml_file(tmp_path):
    write_voc(tmp_path, "000002", [("unicorn", 0, (1, 1, 5, 5))])
    with pytest.raises(DatasetError, match=r"000002\.xml: object 0 has class 'unicorn'"):
        DATASETS.build(dict(type="VOCDetection", data_root=str(tmp_path), split="test"))


def test_voc_image_missing_is_an_error_when_the_dataset_is_built(tmp_path):
    write_voc(tmp_path, "000003", [("dog", 0, (1, 1, 5, 5))])
    (tmp_path / "VOC2007" / "JPEGImages" / "000003.jpg").unlink()
    with pytest.raises(DatasetError, match=r"VOC test: 1 of the 1 listed images are not on disk, the first: .*000003\.jpg \(image id 0\)"):
        DATASETS.build(dict(type="VOCDetection", data_root=str(tmp_path), split="test"))


def test_generated_set_exported_as_coco_reads_back_identically(tmp_path):
    generated = DATASETS.build(dict(type="GeneratedDetDataset", length=5, size=48))
    ann_file = generated.export_coco(tmp_path)
    read_back = DATASETS.build(dict(type="CocoDetection", ann_file=str(ann_file), data_prefix=str(tmp_path / "images")))
    assert read_back.classes == generated.classes and len(read_back) == len(generated)
    for index in range(len(generated)):
        original, copy = generated[index], read_back[index]
        assert torch.equal(original["inputs"], copy["inputs"])
        assert torch.equal(original["targets"]["boxes"], copy["targets"]["boxes"])
        assert torch.equal(original["targets"]["labels"], copy["targets"]["labels"])


def test_iou_crop_then_sanitize_drops_emptied_boxes_with_their_labels():
    pipeline = [dict(type="RandomIoUCrop"), dict(type="SanitizeBoundingBoxes")]
    dataset = DATASETS.build(dict(type="GeneratedDetDataset", length=20, size=64, max_objects=4, pipeline=pipeline))
    plain = DATASETS.build(dict(type="GeneratedDetDataset", length=20, size=64, max_objects=4))
    torch.manual_seed(0)
    cropped_any = False
    for index in range(len(dataset)):
        item = dataset[index]
        boxes, labels = item["targets"]["boxes"], item["targets"]["labels"]
        height, width = item["inputs"].shape[-2:]
        assert len(boxes) == len(labels) and len(boxes) <= len(plain[index]["targets"]["boxes"])
        assert ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()
        assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all() and (boxes >= 0).all()
        cropped_any |= (height, width) != (64, 64)
    assert cropped_any


def test_coco_reads_relative_ann_file_and_mmdet_data_prefix_under_data_root(tmp_path):
    coco_tree(tmp_path)
    dataset = DATASETS.build(dict(type="CocoDetection", data_root=str(tmp_path), ann_file="ann.json", data_prefix=dict(img="img/")))
    assert len(dataset) == 2 and dataset[0]["meta"]["file"] == str(tmp_path / "img" / "a.png")
    absolute = DATASETS.build(dict(type="CocoDetection", data_root="/elsewhere", ann_file=str(tmp_path / "ann.json"),
                                   data_prefix=str(tmp_path / "img")))
    assert len(absolute) == 2  # absolute paths are taken as they are, as in mmdet


def test_coco_data_prefix_key_it_does_not_read_is_an_error(tmp_path):
    coco_tree(tmp_path)
    with pytest.raises(DatasetError, match=r"data_prefix has keys \['imgs'\] it does not read; it reads img, img_path"):
        DATASETS.build(dict(type="CocoDetection", data_root=str(tmp_path), ann_file="ann.json", data_prefix=dict(imgs="img/")))
