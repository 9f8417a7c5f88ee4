"""Segmentation datasets: the generated set, the folder layout, VOC and Cityscapes trees."""

import numpy as np
import pytest
import torch
from PIL import Image

from trainyard import DATASETS, DatasetError


def shapes(**options):
    return DATASETS.build(dict(type="ShapesDataset", length=8, size=32, **options))


def test_shapes_are_deterministic_from_seed_and_index():
    first, second = shapes()[3], shapes()[3]
    assert torch.equal(first["inputs"], second["inputs"]) and torch.equal(first["targets"], second["targets"])
    assert not torch.equal(shapes(seed=1)[3]["inputs"], first["inputs"])
    assert not torch.equal(shapes(split="val")[3]["inputs"], first["inputs"])
    assert first["inputs"].dtype == torch.uint8 and first["inputs"].shape == (3, 32, 32)
    assert first["targets"].dtype == torch.int64 and set(first["targets"].unique().tolist()) <= {0, 1, 2, 3}
    assert first["meta"]["ori_size"] == (32, 32)


def test_shapes_do_not_depend_on_global_random_state():
    torch.manual_seed(123)
    first = shapes()[5]["inputs"]
    torch.manual_seed(456)
    assert torch.equal(shapes()[5]["inputs"], first)


def test_color_cue_switch_changes_only_the_colours():
    cued, plain = shapes(color_cue=True)[2], shapes(color_cue=False)[2]
    assert torch.equal(cued["targets"], plain["targets"])
    assert not torch.equal(cued["inputs"], plain["inputs"])


def test_exported_shapes_read_back_through_the_folder_dataset(tmp_path):
    source = shapes(split="val")
    source.export(tmp_path)
    folder = DATASETS.build(dict(type="FolderSegDataset", data_root=str(tmp_path), img_dir="img_dir/val", ann_dir="ann_dir/val", img_suffix=".png"))
    assert len(folder) == 8
    for index in (0, 7):
        assert torch.equal(folder[index]["inputs"], source[index]["inputs"])
        assert torch.equal(folder[index]["targets"], source[index]["targets"])


def write_png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode=mode).save(path)


def test_folder_dataset_maps_class_ids_and_keeps_ignore(tmp_path):
    write_png(tmp_path / "images/a.png", np.zeros((4, 4, 3)))
    write_png(tmp_path / "labels/a.png", [[10, 10, 20, 20], [10, 10, 20, 20], [30, 30, 255, 255], [0, 0, 0, 0]])
    dataset = DATASETS.build(dict(
        type="FolderSegDataset", data_root=str(tmp_path), img_dir="images", ann_dir="labels", img_suffix=".png",
        classes=["road", "car"], label_map={10: 0, 20: 1},
    ))
    targets = dataset[0]["targets"]
    assert targets.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [255, 255, 255, 255], [255, 255, 255, 255]]
    assert dataset.metainfo["classes"] == ("road", "car")


def test_folder_dataset_pipeline_crops_image_and_label_together(tmp_path):
    image = np.arange(6 * 6 * 3).reshape(6, 6, 3) % 256
    write_png(tmp_path / "images/a.png", image)
    write_png(tmp_path / "labels/a.png", np.arange(36).reshape(6, 6))
    dataset = DATASETS.build(dict(
        type="FolderSegDataset", data_root=str(tmp_path), img_dir="images", ann_dir="labels", img_suffix=".png",
        pipeline=[dict(type="SegRandomCrop", size=8), dict(type="RandomHorizontalFlip", p=1.0)],
    ))
    sample = dataset[0]
    assert sample["inputs"].shape == (3, 8, 8) and sample["targets"].shape == (8, 8)
    assert (sample["targets"] == 255).sum() == 64 - 36  # padding is ignored, not background
    labels = sample["targets"][sample["targets"] != 255].reshape(6, 6)
    assert labels[0].tolist() == list(range(5, -1, -1))


def test_folder_dataset_errors_name_the_path(tmp_path):
    with pytest.raises(DatasetError, match=f"image directory not found: {tmp_path}/nope"):
        DATASETS.build(dict(type="FolderSegDataset", data_root=str(tmp_path), img_dir="nope", ann_dir="labels"))
    write_png(tmp_path / "images/a.png", np.zeros((4, 4, 3)))
    (tmp_path / "labels").mkdir()
    with pytest.raises(DatasetError, match="images/a.png has no label map .*labels/a.png"):
        DATASETS.build(dict(type="FolderSegDataset", data_root=str(tmp_path), img_dir="images", ann_dir="labels", img_suffix=".png"))


def test_corrupt_image_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    write_png(tmp_path / "labels/broken.png", np.zeros((4, 4)))
    dataset = DATASETS.build(dict(type="FolderSegDataset", data_root=str(tmp_path), img_dir="images", ann_dir="labels", img_suffix=".png"))
    with pytest.raises(DatasetError, match="cannot read image .*images/broken.png"):
        dataset[0]


def test_label_value_beyond_the_models_classes_names_the_file_when_the_dataset_lists_none(tmp_path):
    from trainyard import MODELS
    from trainyard.data import default_collate

    for name, value in (("a", 3), ("b", 7)):
        write_png(tmp_path / f"images/{name}.png", np.zeros((8, 8, 3)))
        write_png(tmp_path / f"labels/{name}.png", np.full((8, 8), value))
    dataset = DATASETS.build(dict(type="FolderSegDataset", data_root=str(tmp_path), img_dir="images", ann_dir="labels", img_suffix=".png"))
    model = MODELS.build(dict(type="UNet", num_classes=4, base_channels=4, depth=2))
    batch = model.data_preprocessor(default_collate([dataset[0], dataset[1]]))
    with pytest.raises(DatasetError, match=r"images/b.png: label map holds class values \[7\], but model.num_classes=4"):
        model(batch, mode="loss")


def test_voc_reads_a_tiny_tree(tmp_path):
    voc = tmp_path / "VOCdevkit/VOC2012"
    write_png(voc / "JPEGImages/2007_000001.jpg", np.full((5, 6, 3), 128))
    palette_label = Image.fromarray(np.array([[0, 15, 15, 255, 0, 0]] * 5, dtype=np.uint8), mode="P")
    palette_label.putpalette([0, 0, 0, 192, 128, 128] * 128)
    (voc / "SegmentationClass").mkdir(parents=True)
    palette_label.save(voc / "SegmentationClass/2007_000001.png")
    (voc / "ImageSets/Segmentation").mkdir(parents=True)
    (voc / "ImageSets/Segmentation/val.txt").write_text("2007_000001\n")
    dataset = DATASETS.build(dict(type="VOCSegDataset", data_root=str(tmp_path), split="val"))
    sample = dataset[0]
    assert len(dataset) == 1 and dataset.classes[15] == "person"
    assert sample["inputs"].shape == (3, 5, 6)
    assert sample["targets"][0].tolist() == [0, 15, 15, 255, 0, 0]


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path):
    write_png(tmp_path / "leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png", np.zeros((2, 4, 3)))
    write_png(tmp_path / "gtFine/val/aachen/aachen_000000_000019_gtFine_labelIds.png", [[7, 26, 33, 0], [1, 24, 8, 11]])
    dataset = DATASETS.build(dict(type="CityscapesDataset", data_root=str(tmp_path), split="val"))
    assert dataset[0]["targets"].tolist() == [[0, 13, 18, 255], [255, 11, 1, 2]]
    assert len(dataset.classes) == 19 and dataset.palette[0] == (128, 64, 128)


def test_cityscapes_missing_root_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="Cityscapes image directory not found"):
        DATASETS.build(dict(type="CityscapesDataset", data_root=str(tmp_path / "nowhere")))


def test_folder_dataset_takes_mmseg_data_prefix_under_data_root(tmp_path):
    write_png(tmp_path / "images/training/a.png", np.zeros((4, 4, 3)))
    write_png(tmp_path / "annotations/training/a.png", np.full((4, 4), 2))
    dataset = DATASETS.build(dict(
        type="FolderSegDataset", data_root=str(tmp_path), img_suffix=".png", label_map={k: k - 1 for k in range(1, 151)},
        data_prefix=dict(img_path="images/training", seg_map_path="annotations/training"),
    ))
    assert len(dataset) == 1 and dataset[0]["targets"].unique().tolist() == [1]
    with pytest.raises(DatasetError, match="give ann_dir, or data_prefix=dict.*not both"):
        DATASETS.build(dict(type="FolderSegDataset", data_root=str(tmp_path), img_suffix=".png", ann_dir="annotations/training",
                            data_prefix=dict(img="images/training", seg="annotations/training")))
