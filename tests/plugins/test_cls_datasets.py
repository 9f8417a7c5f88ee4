"""Classification readers on small trees and files the tests write in the real formats."""

import gzip
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from trainyard import DATASETS, DatasetError


def write_image(path, colour, size=(12, 10), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, fmt)
    return path


@pytest.fixture
def image_tree(tmp_path):
    write_image(tmp_path / "train" / "cat" / "a.png", (200, 10, 10))
    write_image(tmp_path / "train" / "cat" / "sub" / "b.JPG", (190, 20, 20), fmt="JPEG")
    write_image(tmp_path / "train" / "dog" / "c.bmp", (10, 10, 200))
    (tmp_path / "train" / "dog" / "notes.txt").write_text("not an image")
    return tmp_path


def test_image_folder_takes_classes_from_sub_folders_and_reads_every_format(image_tree):
    dataset = DATASETS.build(dict(type="ImageFolder", data_root=str(image_tree), data_prefix="train"))
    assert dataset.metainfo["classes"] == ("cat", "dog")
    assert [label for _, label in dataset.samples] == [0, 0, 1]
    item = dataset[2]
    assert item["targets"] == 1 and item["inputs"].dtype == torch.uint8 and item["inputs"].shape == (3, 10, 12)
    assert item["inputs"][:, 0, 0].tolist() == [10, 10, 200]
    assert item["meta"]["file"].endswith("c.bmp") and item["meta"]["ori_size"] == (10, 12)


def test_image_folder_applies_the_pipeline(image_tree):
    dataset = DATASETS.build(dict(type="ImageFolder", data_root=str(image_tree / "train"),
                                  pipeline=[dict(type="Resize", size=(6, 6), antialias=True)]))
    assert dataset[0]["inputs"].shape == (3, 6, 6)


def test_an_empty_class_folder_is_a_clear_error(image_tree):
    (image_tree / "train" / "fox").mkdir()
    with pytest.raises(DatasetError, match=r"class folder .*fox holds no images"):
        DATASETS.build(dict(type="ImageFolder", data_root=str(image_tree / "train")))


@pytest.mark.parametrize("content", [b"not an image at all", "truncated"])
def test_a_corrupt_or_truncated_image_names_the_file(image_tree, content):
    path = image_tree / "train" / "dog" / "broken.png"
    if content == "truncated":
        good = write_image(image_tree / "good.png", (1, 2, 3), size=(64, 64)).read_bytes()
        content = good[: len(good) // 2]
    path.write_bytes(content)
    dataset = DATASETS.build(dict(type="ImageFolder", data_root=str(image_tree / "train")))
    index = next(i for i, (file, _) in enumerate(dataset.samples) if file.endswith("broken.png"))
    with pytest.raises(DatasetError, match=r"cannot read image .*broken\.png"):
        dataset[index]


def test_a_folder_without_class_folders_is_a_clear_error(tmp_path):
    write_image(tmp_path / "a.png", (0, 0, 0))
    with pytest.raises(DatasetError, match="no class sub-folders"):
        DATASETS.build(dict(type="ImageFolder", data_root=str(tmp_path)))


def val_split(image_tree, *class_names):
    for number, name in enumerate(class_names):
        write_image(image_tree / "val" / name / "v.png", (number, 0, 0))
    return DATASETS.build(dict(type="ImageFolder", data_root=str(image_tree), data_prefix="val", classes_from="train"))


def test_a_val_split_lacking_a_class_keeps_the_training_labels_by_name(image_tree, trainyard_log):
    val = val_split(image_tree, "dog")
    assert val.metainfo["classes"] == ("cat", "dog")
    assert [label for _, label in val.samples] == [1]
    assert "no images, of classes ['cat']" in trainyard_log.text


def test_a_val_class_that_train_lacks_names_the_class_and_the_folder(image_tree):
    with pytest.raises(DatasetError, match=r"val[/\\]fox: class 'fox' is not among the 2 classes of .*train \(cat, dog\)"):
        val_split(image_tree, "cat", "dog", "fox")


def test_listed_classes_without_any_folder_are_an_error(image_tree):
    with pytest.raises(DatasetError, match=r"train has a folder for none of its 2 classes \(cow, fox\)"):
        DATASETS.build(dict(type="ImageFolder", data_root=str(image_tree), data_prefix="train", classes=["cow", "fox"]))


def test_classes_and_classes_from_together_are_an_error(image_tree):
    with pytest.raises(DatasetError, match="give classes or classes_from, not both"):
        DATASETS.build(dict(type="ImageFolder", data_root=str(image_tree), data_prefix="train", classes=["cat"], classes_from="train"))


def test_the_class_report_names_the_dataset_classes_when_the_model_predicts_another_count():
    from trainyard import METRICS, ModelContractError

    report = METRICS.build(dict(type="ClassificationReport"))
    report.dataset_meta = {"classes": ("a", "b", "c", "d")}
    with pytest.raises(ModelContractError, match=r"predicts 3 classes, but the evaluated dataset lists 4 \(a, b, c, d\).*classes_from='train'"):
        report.process({"targets": torch.tensor([0])}, torch.zeros(1, 3))


def test_file_list_reads_paths_and_labels(image_tree):
    (image_tree / "list.txt").write_text("# path label\ntrain/cat/a.png 0\n\ntrain/dog/c.bmp 1\n")
    dataset = DATASETS.build(dict(type="FileListDataset", ann_file=str(image_tree / "list.txt"), classes=["cat", "dog"]))
    assert len(dataset) == 2 and dataset[1]["targets"] == 1 and dataset.metainfo["classes"] == ("cat", "dog")


def test_file_list_label_outside_the_classes_names_the_image(image_tree):
    (image_tree / "list.txt").write_text("train/cat/a.png 0\ntrain/dog/c.bmp 2\n")
    with pytest.raises(DatasetError, match=r"list\.txt: image .*c\.bmp has label 2, outside the 2 classes"):
        DATASETS.build(dict(type="FileListDataset", ann_file=str(image_tree / "list.txt"), classes=["cat", "dog"]))


def test_file_list_line_that_does_not_parse_names_file_and_line(image_tree):
    (image_tree / "list.txt").write_text("train/cat/a.png 0\ntrain/dog/c.bmp dog\n")
    with pytest.raises(DatasetError, match=r"list\.txt:2: expected '<image path> <class index>'"):
        DATASETS.build(dict(type="FileListDataset", ann_file=str(image_tree / "list.txt")))


def write_cifar(root, folder, files, meta_file, names_key, labels_key, names):
    """Python-2 style pickles with bytes keys, as the CIFAR archives hold."""
    (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in files:
        data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        labels = [0, 1, len(names) - 1]
        batches[name] = (data, labels)
        with open(root / folder / name, "wb") as f:
            pickle.dump({b"data": data, labels_key.encode(): labels, b"batch_label": b"x"}, f, protocol=2)
    with open(root / folder / meta_file, "wb") as f:
        pickle.dump({names_key.encode(): [n.encode() for n in names]}, f, protocol=2)
    return batches


def test_cifar10_reads_the_python_batches(tmp_path):
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    batches = write_cifar(tmp_path, "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"],
                          "batches.meta", "label_names", "labels", names)
    train = DATASETS.build(dict(type="CIFAR10", data_root=str(tmp_path), split="train"))
    test = DATASETS.build(dict(type="CIFAR10", data_root=str(tmp_path), split="test"))
    assert len(train) == 15 and len(test) == 3 and train.metainfo["classes"] == tuple(names)
    data, labels = batches["data_batch_2"]
    item = train[4]  # the second image of the second batch
    assert item["targets"] == labels[1]
    assert torch.equal(item["inputs"], torch.from_numpy(data[1].reshape(3, 32, 32)))


def test_cifar100_reads_the_fine_labels(tmp_path):
    names = [f"class{i}" for i in range(100)]
    write_cifar(tmp_path, "cifar-100-python", ["train", "test"], "meta", "fine_label_names", "fine_labels", names)
    dataset = DATASETS.build(dict(type="CIFAR100", data_root=str(tmp_path), split="test"))
    assert len(dataset.classes) == 100 and dataset[2]["targets"] == 99


def test_a_cifar_file_holding_code_is_refused(tmp_path):
    write_cifar(tmp_path, "cifar-10-batches-py", ["test_batch"], "batches.meta", "label_names", "labels", ["a", "b"])
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": __import__("os").getcwd}, f, protocol=2)  # a reference to os.getcwd
    with pytest.raises(DatasetError, match=r"refusing to load (os|posix)\.getcwd"):
        DATASETS.build(dict(type="CIFAR10", data_root=str(tmp_path), split="test"))


def write_idx(path, array, magic, compress):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if compress else open
    with opener(str(path) + (".gz" if compress else ""), "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("dataset_type", ["MNIST", "FashionMNIST"])
def test_mnist_formats_read_gzipped_idx_files_from_a_raw_folder(tmp_path, dataset_type):
    raw = tmp_path / "raw"
    raw.mkdir()
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28))
    write_idx(raw / "t10k-images-idx3-ubyte", images, 2051, compress=True)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.array([3, 1, 4, 1]), 2049, compress=True)
    dataset = DATASETS.build(dict(type=dataset_type, data_root=str(tmp_path), split="test"))
    assert len(dataset) == 4 and len(dataset.classes) == 10 and dataset[2]["targets"] == 4
    image = dataset[0]["inputs"]
    assert image.shape == (3, 28, 28) and torch.equal(image[1], torch.from_numpy(images[0].astype(np.uint8)))
    if dataset_type == "FashionMNIST":
        assert dataset.classes[9] == "Ankle boot"


def test_a_truncated_idx_file_is_a_clear_error(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 28, 28)), 2051, compress=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4), 2049, compress=False)
    data = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(data[:-100])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte is truncated"):
        DATASETS.build(dict(type="MNIST", data_root=str(tmp_path)))


def test_generated_images_are_the_same_every_time_and_differ_between_splits():
    first = DATASETS.build(dict(type="GeneratedClsDataset", length=8, size=16))
    again = DATASETS.build(dict(type="GeneratedClsDataset", length=8, size=16))
    other = DATASETS.build(dict(type="GeneratedClsDataset", length=8, size=16, split="val"))
    assert all(torch.equal(first[i]["inputs"], again[i]["inputs"]) for i in range(8))
    assert not torch.equal(first[0]["inputs"], other[0]["inputs"])
    assert {first[i]["targets"] for i in range(8)} <= set(range(6))


def test_file_list_reads_relative_ann_file_and_data_prefix_under_data_root(image_tree):
    (image_tree / "meta").mkdir()
    (image_tree / "meta" / "train.txt").write_text("cat/a.png 0\ndog/c.bmp 1\n")
    dataset = DATASETS.build(dict(type="FileListDataset", data_root=str(image_tree), ann_file="meta/train.txt",
                                  data_prefix=dict(img_path="train")))
    assert dataset[1]["meta"]["file"] == str(image_tree / "train" / "dog" / "c.bmp") and dataset[1]["targets"] == 1


def test_image_folder_takes_mmpretrain_data_prefix_dict(image_tree):
    dataset = DATASETS.build(dict(type="ImageFolder", data_root=str(image_tree), data_prefix=dict(img_path="train")))
    assert dataset.metainfo["classes"] == ("cat", "dog") and len(dataset) == 3
