"""Arriving from OpenMMLab: errors that name the trainyard form, the converted configs train, MMEngine checkpoints load safely."""

import builtins
import json
import logging
import re
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

from trainyard import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS, CheckpointError, ConfigError, RegistryError
from trainyard.checkpoint import load_weights, read_checkpoint, read_foreign_checkpoint
from trainyard.config import load_config
from trainyard.openmmlab_names import ARGUMENTS, UNKNOWN_TYPES
from trainyard.runner import Runner

MIGRATING = REPO / "docs" / "migrating.md"

# unknown names and arguments --------------------------------------------------------------


@pytest.mark.parametrize(("registry", "name", "expected"), [
    (DATASETS, "CocoDataset", "CocoDataset is mmdet's; here it is CocoDetection"),
    (DATASETS, "ADE20KDataset", "ADE20KDataset is mmseg's; here use FolderSegDataset"),
    (DATASETS, "ImageNet", "ImageNet is mmpretrain's; here use ImageFolder"),
    (TRANSFORMS, "LoadImageFromFile", "leave it out of the pipeline"),
    (TRANSFORMS, "RandomFlip", "here it is RandomHorizontalFlip(p=0.5)"),
    (TRANSFORMS, "PackDetInputs", "leave it out of the pipeline"),
    (METRICS, "VOCMetric", "use CocoMetric on VOCDetection"),
    (HOOKS, "CheckInvalidLossHook", "here it is NaNGuardHook"),
])
def test_an_unknown_openmmlab_name_gets_the_trainyard_equivalent(registry, name, expected):
    with pytest.raises(RegistryError) as error:
        registry.build(dict(type=name))
    message = str(error.value)
    assert expected in message and "see docs/migrating.md" in message and "Did you mean" not in message
    assert "\n" not in message


def test_mmdet_model_keys_get_one_line_naming_torchvisions_detector():
    with pytest.raises(ConfigError) as error:
        MODELS.build(dict(type="FasterRCNN", num_classes=3, neck=dict(type="FPN"), roi_head=dict(), train_cfg=dict(), test_cfg=dict()))
    message = str(error.value)
    assert "neck, roi_head, test_cfg, train_cfg are OpenMMLab's model keys: trainyard's detectors are torchvision's" in message
    assert "variant='resnet50_fpn'" in message and "\n" not in message


def test_mmpretrain_classifier_keys_name_the_backbone_form():
    with pytest.raises(RegistryError, match=r"head, neck are OpenMMLab's model keys: .*TorchvisionBackbone"):
        MODELS.build(dict(type="ImageClassifier", num_classes=3, backbone=dict(type="TorchvisionBackbone", name="resnet18"),
                          neck=dict(type="GlobalAveragePooling"), head=dict(type="LinearClsHead")))


@pytest.mark.parametrize(("cfg", "expected"), [
    (dict(type="Resize", scale=(1333, 800), keep_ratio=True), "is ResizeKeepRatio(scale=(1333, 800)) here"),
    (dict(type="RandomResizedCrop", scale=224), "is RandomResizedCrop(size=224) here"),
    (dict(type="CocoMetric", ann_file="x.json", metric="bbox"), "it takes the ground truth from the dataset"),
])
def test_openmmlab_arguments_of_a_same_named_component_get_the_trainyard_form(cfg, expected):
    registry = METRICS if cfg["type"] == "CocoMetric" else TRANSFORMS
    with pytest.raises(RegistryError) as error:
        registry.build(cfg)
    assert expected in str(error.value)


def test_every_component_a_hint_names_is_registered():
    registries = (DATASETS, TRANSFORMS, MODELS, METRICS, HOOKS)
    texts = [text for _, text in UNKNOWN_TYPES.values()] + [text.split(" is ", 1)[1] for _, _, text in ARGUMENTS.values()]
    named = {name for text in texts for name in re.findall(r"\b([A-Z]\w+)\(", text)}
    unregistered = sorted(name for name in named if not any(name in registry for registry in registries))
    assert named and not unregistered


def test_the_guide_lists_every_name_of_the_table():
    guide = MIGRATING.read_text()
    missing = sorted(name for name in [*UNKNOWN_TYPES, *ARGUMENTS] if f"`{name}" not in guide)
    assert not missing


# the three worked conversions train ---------------------------------------------------------


def tiny_coco(root: Path) -> list[str]:
    for split in ("train2017", "val2017"):
        (root / split).mkdir(parents=True)
        images, annotations = [], []
        for index in range(4 if split == "train2017" else 2):
            Image.fromarray(np.random.default_rng(index).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / split / f"{index}.jpg")
            images.append({"id": index, "file_name": f"{index}.jpg", "height": 48, "width": 64})
            annotations.append({"id": index + 1, "image_id": index, "category_id": 1 + 2 * (index % 2),
                                "bbox": [4, 6, 30, 20], "area": 600.0, "iscrowd": 0})
        (root / "annotations").mkdir(exist_ok=True)
        categories = [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}]
        (root / "annotations" / f"instances_{split}.json").write_text(
            json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return ["model.min_size=64", "model.max_size=64", "train_cfg.max_epochs=1", "custom_hooks=[]"]


def tiny_ade(root: Path) -> list[str]:
    for split in ("training", "validation"):
        for index in range(2):
            rng = np.random.default_rng(index)
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(root / "images" / split / f"{index}.jpg")
            Image.fromarray(rng.integers(0, 4, (40, 48), dtype=np.uint8)).save(root / "annotations" / split / f"{index}.png")
    return ["train_dataloader.dataset.pipeline=[dict(type='SegRandomCrop', size=(32, 32))]",
            "train_dataloader.batch_size=2", "train_cfg.max_iters=2", "train_cfg.val_interval=2", "model_wrapper_cfg=None"]


def tiny_imagenet(root: Path) -> list[str]:
    for split, count in (("train", 2), ("val", 1)):
        for name, colour in (("n01", (200, 10, 10)), ("n02", (10, 10, 200))):
            for index in range(count):
                (root / split / name).mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (40, 40), colour).save(root / split / name / f"{index}.png")
    return ["train_dataloader.dataset.pipeline=[dict(type='RandomResizedCrop', size=32, antialias=True)]",
            "val_dataloader.dataset.pipeline=[dict(type='Resize', size=32, antialias=True)]",
            "train_dataloader.batch_size=2", "val_dataloader.batch_size=2", "train_cfg.max_epochs=1"]


@pytest.mark.parametrize(("config", "make_data"), [
    ("faster_rcnn_r50_fpn_1x_coco.py", tiny_coco),
    ("deeplabv3_r50_ade20k.py", tiny_ade),
    ("resnet50_8xb32_in1k.py", tiny_imagenet),
])
def test_a_worked_conversion_trains_two_iterations_on_tiny_data(config, make_data, tmp_path):
    data_root = tmp_path / "data"
    options = make_data(data_root)
    loaders = ("train_dataloader", "val_dataloader", "test_dataloader")
    options += [f"{loader}.dataset.data_root={data_root}" for loader in loaders]
    options += [f"{loader}.{key}" for loader in loaders for key in ("num_workers=0", "persistent_workers=False")]
    cfg = load_config(REPO / "configs" / "migrated" / config, options)
    cfg.work_dir = str(tmp_path / "work")
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2


# MMEngine training checkpoints ----------------------------------------------------------------


def mmengine_checkpoint(path: Path, model: torch.nn.Module) -> Path:
    """What MMEngine's Runner saves: weights beside MessageHub, optimizer and scheduler state, numpy values in meta."""
    from mmengine.logging import MessageHub

    hub = MessageHub.get_instance("test_migration")
    hub.update_scalar("train/loss", 1.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    torch.save({
        "meta": {"epoch": 1, "iter": 3, "seed": np.int64(5), "mmengine_version": "0.10.7"},
        "state_dict": OrderedDict(model.state_dict()),
        "message_hub": hub.state_dict(),
        "optimizer": optimizer.state_dict(),
        "param_schedulers": [{"milestones": {8: 1, 11: 1}, "last_step": 3}],
    }, path)
    return path


def test_load_from_takes_an_mmengine_checkpoints_weights_and_names_what_it_skipped(tmp_path, trainyard_log):
    saved = torch.nn.Linear(2, 3)
    path = mmengine_checkpoint(tmp_path / "epoch_1.pth", saved)
    with pytest.raises(CheckpointError, match="refuses it"):
        read_checkpoint(path)  # resume and every other reader keep refusing it
    model = torch.nn.Linear(2, 3)
    load_weights(types.SimpleNamespace(unwrapped_model=model, logger=logging.getLogger("trainyard")), str(path))
    assert torch.equal(model.weight, saved.weight) and torch.equal(model.bias, saved.bias)
    assert re.search(r"read as inert placeholders \(nothing imported or run\) and skipped: meta \(numpy.*message_hub "
                     r"\(mmengine\.logging\.history_buffer\.HistoryBuffer", trainyard_log.text)


def test_a_crafted_checkpoint_runs_nothing_when_its_weights_are_taken(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return builtins.exec, (f"open({str(marker)!r}, 'w').close()",)

    path = tmp_path / "crafted.pth"
    torch.save({"state_dict": {"weight": torch.ones(2)}, "message_hub": Payload()}, path)
    torch.load(path, weights_only=False)
    assert marker.exists()  # the file really runs code when unpickled the ordinary way
    marker.unlink()
    state, skipped = read_foreign_checkpoint(path)
    assert not marker.exists()
    assert skipped == {"message_hub": ["builtins.exec"]} and list(state) == ["state_dict"]


def test_a_module_a_checkpoint_names_is_never_imported(tmp_path):
    module = types.ModuleType("trainyard_test_never_imported")

    class Recorder:
        pass

    Recorder.__module__, Recorder.__qualname__ = module.__name__, "Recorder"
    module.Recorder = Recorder
    sys.modules[module.__name__] = module
    try:
        torch.save({"state_dict": {"weight": torch.ones(2)}, "message_hub": Recorder()}, tmp_path / "a.pth")
    finally:
        del sys.modules[module.__name__]
    state, skipped = read_foreign_checkpoint(tmp_path / "a.pth")
    assert skipped == {"message_hub": ["trainyard_test_never_imported.Recorder"]} and module.__name__ not in sys.modules
    assert torch.equal(state["state_dict"]["weight"], torch.ones(2))


def test_weights_that_hold_python_objects_are_refused(tmp_path):
    torch.save({"state_dict": {"weight": torch.ones(2), "extra": Path("x")}}, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match=r"its 'state_dict' holds Python objects \(pathlib\..*Path\)"):
        read_foreign_checkpoint(tmp_path / "w.pth")


def test_a_checkpoint_naming_os_stays_refused(tmp_path):
    class Shell:
        def __reduce__(self):
            import os

            return os.system, ("true",)

    torch.save({"state_dict": {"weight": torch.ones(2)}, "message_hub": Shell()}, tmp_path / "s.pth")
    with pytest.raises(CheckpointError, match=r"cannot be read safely: .*blocked"):
        read_foreign_checkpoint(tmp_path / "s.pth")


def test_a_python_object_standing_as_a_weights_key_is_refused(tmp_path):
    torch.save({"state_dict": {Path("x"): torch.ones(2)}}, tmp_path / "k.pth")
    with pytest.raises(CheckpointError, match=r"its 'state_dict' holds Python objects \(pathlib\."):
        read_foreign_checkpoint(tmp_path / "k.pth")


def test_mmdet_head_configs_given_to_a_torchvision_detector_are_one_line():
    model = dict(type="FasterRCNN", num_classes=3, variant="mobilenet_v3_large_320_fpn", rpn_head=dict(type="RPNHead"))
    with pytest.raises(ConfigError, match=r"rpn_head given as OpenMMLab component configs .* docs/migrating.md"):
        MODELS.build(model)
