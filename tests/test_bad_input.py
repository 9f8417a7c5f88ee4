"""The bad-input and fault battery: every mistake a user can make ends in one clear message.

Each case runs the real command line in a fresh process against a copy of one trained
work directory (and, for ``{seg}``, ``{cls}``, ``{det}`` in its arguments, a copy of
that task's quick run), and checks the exit status, that the message names the
offending thing, that no traceback is printed, and that every file in the case's
folder before the command (after its setup) is there afterwards with the same bytes,
unless the case names it in ``may_change``. The cases run two at a time (they are
independent).
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch
from conftest import REPO, run_trainyard

T = "tests/configs/tiny.py"
SEG = "configs/seg/unet.py"
SEG_SMALL = ["train_dataloader.dataset.length=4", "train_dataloader.batch_size=2", "train_cfg.max_iters=2",
             "val_dataloader.dataset.length=2", "model.base_channels=4"]


@dataclass
class Case:
    name: str
    args: list[str]
    fragments: list[str]
    code: int = 2
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    may_change: tuple[str, ...] = ()
    """Files (relative to the case folder, globs allowed) the command may rewrite or remove: a resume's pointer."""


def write(relative: str, text: str | bytes) -> Callable[[Path], None]:
    def make(case_dir: Path) -> None:
        path = case_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text.replace("{case}", str(case_dir)))
    return make


def truncate_newest(case_dir: Path) -> None:
    newest = case_dir / "work" / "epoch_1.pth"
    (case_dir / "work" / "epoch_9.pth").write_bytes(newest.read_bytes()[:2000])


def pickled(case_dir: Path) -> None:
    torch.save({"state_dict": {}, "payload": Path("x")}, case_dir / "evil.pth")


def weights_only_file(case_dir: Path) -> None:
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3)}, case_dir / "weights.pth")


def dangling_pointer(case_dir: Path) -> None:
    (case_dir / "work" / "last_checkpoint").write_text(str(case_dir / "work" / "iter_999.pth"))


def all_corrupt(case_dir: Path) -> None:
    for path in (case_dir / "work").glob("*.pth"):
        path.write_bytes(b"not a checkpoint")


def seg_folder(bad: str) -> Callable[[Path], None]:
    def make(case_dir: Path) -> None:
        import numpy as np
        from PIL import Image

        root = case_dir / "segdata"
        (root / "img").mkdir(parents=True)
        (root / "ann").mkdir()
        for i in range(2):
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "img" / f"{i}.png")
            mask = np.zeros((8, 6) if bad == "size" and i == 1 else (8, 8), np.uint8)
            if bad == "value" and i == 1:
                mask[2, 2] = 7
            Image.fromarray(mask).save(root / "ann" / f"{i}.png")
        if bad == "corrupt":
            (root / "img" / "1.png").write_bytes(b"\x89PNG broken")
    return make


def folder_options() -> list[str]:
    return ["train_dataloader.dataset=dict(_delete_=True, type='FolderSegDataset', data_root='{case}/segdata', img_dir='img', "
            "ann_dir='ann', img_suffix='.png', classes=('a', 'b', 'c'))", "train_dataloader.batch_size=2",
            "train_dataloader.num_workers=0", "val_dataloader=None", "val_evaluator=None", "val_cfg=None", "model.num_classes=3",
            "model.base_channels=4", "train_cfg.max_iters=2"]


CIRCLE = "_base_ = ['b.py']\nx = 1\n"
CASES = [
    # config files
    Case("missing config", ["train", "nope/config.py"], ["config file not found: nope/config.py"]),
    Case("config not python", ["train", "{case}/config.yaml"], ["must be a Python file"], setup=write("config.yaml", "a: 1")),
    Case("syntax error", ["train", "{case}/c.py"], ["syntax error in config", "c.py, line 2"], setup=write("c.py", "a = 1\nb = (\n")),
    Case("name error", ["train", "{case}/c.py"], ["c.py, line 3", "undefined_thing"],
         setup=write("c.py", f"_base_ = ['{REPO}/{T}']\nx = 1\ny = undefined_thing + 1\n")),
    Case("circular base", ["train", "{case}/a.py"], ["in a circle", "a.py", "b.py"],
         setup=lambda d: (write("a.py", CIRCLE)(d), write("b.py", "_base_ = ['a.py']\n")(d))),
    Case("missing base", ["train", "{case}/c.py"], ["_base_ does not exist"], setup=write("c.py", "_base_ = ['nothere.py']\n")),
    Case("misspelt top-level key", ["train", T, "--cfg-options", "trian_dataloader=dict()"], ["did you mean 'train_dataloader'"]),
    Case("no model", ["train", "{case}/c.py"], ["'model'"], setup=write("c.py", f"_base_ = ['{REPO}/{T}']\nmodel = None\n")),
    Case("malformed cfg-options", ["train", T, "--cfg-options", "lr0.1"], ["not of the form key=value"]),
    Case("custom import missing", ["train", T, "--cfg-options", "custom_imports=dict(imports=['no_such_module_xyz'])"], ["no_such_module_xyz"]),
    # components
    Case("unknown model", ["train", T, "--cfg-options", "model.type=ToyNett"], ["unknown type 'ToyNett'", "ToyNet"]),
    Case("unknown model argument", ["train", T, "--cfg-options", "model.depth=3"], ["unexpected argument 'depth'", "Accepted arguments"]),
    Case("model argument of the wrong type", ["train", T, "--cfg-options", "model.channels=three"], ["channels='three'", "expects a number"]),
    Case("learning rate of the wrong type", ["train", T, "--cfg-options", "optim_wrapper.optimizer.lr=abc"], ["optim_wrapper.optimizer.lr='abc'", "expects a number"]),
    Case("unknown optimizer", ["train", T, "--cfg-options", "optim_wrapper.optimizer.type=SDG"], ["unknown type 'SDG'", "SGD"]),
    Case("unknown scheduler", ["train", T, "--cfg-options", "param_scheduler=[dict(type='CosineLR')]"], ["unknown type 'CosineLR'"]),
    Case("unknown hook", ["train", T, "--cfg-options", "custom_hooks=[dict(type='EMAHok')]"], ["unknown type 'EMAHok'", "EMAHook"]),
    Case("hook argument misspelt", ["train", T, "--cfg-options", "custom_hooks=[dict(type='EMAHook', momentun=0.1)]"], ["momentun", "momentum"]),
    Case("unknown metric", ["train", T, "--cfg-options", "val_evaluator=dict(type='Acc')"], ["unknown type 'Acc'"]),
    Case("unknown dataset", ["train", T, "--cfg-options", "train_dataloader.dataset.type=ToyData"], ["unknown type 'ToyData'"]),
    Case("unknown sampler", ["train", T, "--cfg-options", "train_dataloader.sampler=dict(type='RandomSamplr')"], ["RandomSamplr"]),
    Case("unknown dataloader key", ["train", T, "--cfg-options", "train_dataloader.shuffle=True"], ["unknown keys ['shuffle']"]),
    Case("train_cfg without type", ["train", T, "--cfg-options", "train_cfg=dict(_delete_=True, max_epochs=2)"], ["train_cfg needs a 'type'"]),
    Case("val loader without evaluator", ["train", T, "--cfg-options", "val_evaluator=None"], ["'val_dataloader' but no 'val_evaluator'"]),
    Case("unknown optim_wrapper key", ["train", T, "--cfg-options", "optim_wrapper.clip=1"], ["optim_wrapper has unknown keys ['clip']"]),
    Case("accumulation zero", ["train", T, "--cfg-options", "optim_wrapper.accumulative_counts=0"], ["accumulative_counts must be >= 1"]),
    Case("unknown paramwise key", ["train", T, "--cfg-options", "optim_wrapper.paramwise_cfg=dict(bias_mult=0)"], ["paramwise_cfg has unknown keys"]),
    Case("unknown randomness key", ["train", T, "--cfg-options", "randomness.sed=1"], ["randomness has unknown keys ['sed']"]),
    Case("unknown launcher", ["train", T, "--cfg-options", "launcher=mpi"], ["unknown launcher 'mpi'"]),
    Case("batch size zero", ["train", T, "--cfg-options", "train_dataloader.batch_size=0"], ["train_dataloader.batch_size must be a positive integer, got 0"]),
    Case("negative batch size", ["train", T, "--cfg-options", "val_dataloader.batch_size=-2"], ["val_dataloader.batch_size must be a positive integer, got -2"]),
    Case("model with too few classes", ["train", SEG, "--cfg-options", *SEG_SMALL, "model.num_classes=2"], ["model.num_classes=2", "has 4 classes", "set model.num_classes=4"]),
    Case("torchvision model unknown argument", ["train", SEG, "--cfg-options", *SEG_SMALL, "model=dict(_delete_=True, type='FCNResNet50', num_classes=3, aux_weight=0.4)"],
         ["unknown arguments ['aux_weight']"]),
    Case("model without a loss", ["train", T, "--cfg-options", "model.type=NoLossNet"], ["returned no loss"]),
    Case("num_classes auto on a dataset without classes", ["train", T, "--cfg-options", "model.num_classes=auto"],
         ["model.num_classes='auto'", "train_dataloader.dataset lists no classes", "set model.num_classes"]),
    Case("detector argument misspelt", ["train", "configs/det/faster_rcnn_small_generated.py", "--cfg-options", "model.rpn_nms_treshold=0.5"],
         ["FasterRCNN got unknown arguments ['rpn_nms_treshold']", "rpn_nms_thresh"]),
    Case("timm backbone name misspelt", ["train", "configs/cls/small_cnn_generated.py", "--cfg-options",
                                         "model.backbone=dict(_delete_=True, type='TimmBackbone', name='resnet10x')"],
         ["TimmBackbone: no model named 'resnet10x'; did you mean"]),
    Case("plugin disabled", ["train", SEG], ["unknown type 'UNet'", "Disabled by TRAINYARD_DISABLE_PLUGINS: trainyard_seg"],
         env={"TRAINYARD_DISABLE_PLUGINS": "trainyard_seg"}),
    # data
    Case("data root missing", ["train", "configs/seg/unet_voc12.py", "--cfg-options", "train_dataloader.dataset.data_root={case}/VOCdevkit"],
         ["train_dataloader.dataset", "VOCdevkit", "not found"]),
    Case("image folder missing", ["train", "configs/cls/resnet18_imagefolder.py", "--cfg-options", "train_dataloader.dataset.data_root={case}/mine"],
         ["train_dataloader.dataset", "image folder not found", "mine/train"]),
    Case("corrupt image in an image folder", ["train", "configs/cls/small_cnn_generated.py", "--work-dir", "{case}/w", "--cfg-options",
                                              "train_dataloader=dict(_delete_=True, batch_size=2, dataset=dict(type='ImageFolder', data_root='{case}/imgs'))"],
         ["cannot read image", "imgs/cat/broken.png"], setup=write("imgs/cat/broken.png", b"not a png")),
    Case("COCO annotation file malformed", ["train", "configs/det/faster_rcnn_r50_fpn_1x_coco.py", "--cfg-options",
                                            "train_dataloader.dataset.ann_file={case}/ann.json"],
         ["train_dataloader.dataset", "ann.json is not valid JSON"], setup=write("ann.json", '{"images": [')),
    Case("mask value outside the classes", ["train", SEG, "--work-dir", "{case}/segwork", "--cfg-options", *folder_options()],
         ["1.png", "class values [7]", "3 classes"], setup=seg_folder("value")),
    Case("mask of another size", ["train", SEG, "--work-dir", "{case}/segwork", "--cfg-options", *folder_options()],
         ["1.png", "(8, 8)", "(8, 6)"], setup=seg_folder("size")),
    Case("corrupt image", ["train", SEG, "--work-dir", "{case}/segwork", "--cfg-options", *folder_options()],
         ["cannot read image", "1.png"], setup=seg_folder("corrupt")),
    # environment and work directory
    Case("work_dir is a file", ["train", T, "--work-dir", "{case}/afile"], ["afile is a file"], setup=write("afile", "x")),
    Case("work_dir under a file", ["train", T, "--work-dir", "{case}/afile/run"], ["is under", "afile, which is a file"], setup=write("afile", "x")),
    Case("nccl without cuda", ["train", T, "--launcher", "pytorch", "--cfg-options", "env_cfg.dist_cfg.backend=nccl"], ["'nccl' needs CUDA", "gloo"],
         env={"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29999"}),
    Case("cuda device without cuda", ["train", T, "--cfg-options", "env_cfg.device=cuda"], ["device='cuda'", "no usable CUDA", "'cpu'"]),
    Case("second run into the same work_dir", ["train", T], ["already holds checkpoints", "--resume", "--work-dir", "--overwrite"]),
    # checkpoints
    Case("resume path missing", ["train", T, "--resume", "{case}/nope.pth"], ["nope.pth does not exist"]),
    Case("resume truncated file", ["train", T, "--resume", "{case}/work/epoch_9.pth"], ["epoch_9.pth is incomplete", "newest intact checkpoint", "epoch_1.pth"],
         setup=truncate_newest),
    Case("resume weights-only file", ["train", T, "--resume", "{case}/weights.pth"], ["cannot be resumed from", "load_from"], setup=weights_only_file),
    Case("resume a different model", ["train", T, "--resume", "--cfg-options", "model.channels=6"], ["does not fit the model", "conv.weight"]),
    Case("resume auto skips a truncated newest file", ["train", T, "--resume", "--cfg-options", "train_cfg.max_epochs=1"],
         ["skipped epoch_9.pth", "resuming from", "epoch_1.pth"], code=0, setup=truncate_newest),
    Case("pointer names a missing file", ["train", T, "--resume", "--cfg-options", "train_cfg.max_epochs=1"],
         ["names", "iter_999.pth, which does not exist", "resuming from"], code=0, setup=dangling_pointer),
    Case("every checkpoint corrupt", ["train", T, "--resume"], ["found no usable checkpoint", "epoch_1.pth"], setup=all_corrupt),
    Case("resume auto with nothing to resume", ["train", T, "--resume", "--work-dir", "{case}/fresh", "--cfg-options", "train_cfg.max_epochs=1"],
         ["no checkpoint in", "starts from the beginning"], code=0),
    Case("load_from missing", ["train", T, "--work-dir", "{case}/new", "--load-from", "{case}/none.pth"], ["none.pth does not exist"]),
    Case("load_from not a checkpoint", ["train", T, "--work-dir", "{case}/new", "--load-from", "{case}/notes.pth"], ["not a torch checkpoint"],
         setup=write("notes.pth", "hello")),
    Case("resume pickled objects", ["train", T, "--work-dir", "{case}/new", "--resume", "{case}/evil.pth"], ["refuses it", "TRAINYARD_SAFE_GLOBALS="],
         setup=pickled),
    Case("load_from pickled objects and no weights", ["train", T, "--work-dir", "{case}/new", "--load-from", "{case}/evil.pth"],
         ["evil.pth", "holds no weights"], setup=pickled),
    Case("safe globals names eval", ["test", T, "{case}/evil.pth"], ["builtins.eval", "never allowed"], setup=pickled,
         env={"TRAINYARD_SAFE_GLOBALS": "builtins.eval"}),
    Case("safe globals names nothing importable", ["test", T, "{case}/evil.pth"], ["no_module.Thing", "cannot be imported"], setup=pickled,
         env={"TRAINYARD_SAFE_GLOBALS": "no_module.Thing"}),
    Case("empty checkpoint", ["test", T, "{case}/work/epoch_0.pth"], ["epoch_0.pth is empty", "newest intact checkpoint", "epoch_1.pth"],
         setup=write("work/epoch_0.pth", b"")),
    Case("random bytes as a checkpoint", ["test", T, "{case}/noise.pth"], ["noise.pth is not a torch checkpoint, or is damaged"],
         setup=write("noise.pth", bytes(range(256)) * 8)),
    Case("checkpoint path is a directory", ["test", T, "{case}/work"], ["is a directory, not a file"]),
    Case("test checkpoint missing", ["test", T, "{case}/missing.pth"], ["missing.pth does not exist"]),
    Case("test config without test set", ["test", T, "{case}/work/epoch_1.pth", "--cfg-options", "test_dataloader=None"], ["'test_dataloader'"]),
    Case("config command on a missing file", ["config", "nope.py"], ["config file not found"]),
    # training faults
    Case("NaN loss from a huge learning rate", ["train", T, "--work-dir", "{case}/nan", "--cfg-options", "optim_wrapper.optimizer.lr=1e30",
                                               "default_hooks.checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False, max_keep_ckpts=1)"],
         ["NaN or infinite at iteration", "The last good checkpoint is", "iter_"]),
    Case("NaN in the data", ["train", T, "--work-dir", "{case}/nan", "--cfg-options", f"train_dataloader.dataset.nan_indices={list(range(24))}"],
         ["NaN or infinite at iteration 1", "No checkpoint was written before"]),
    Case("save_best names a metric validation does not report", ["train", T, "--work-dir", "{case}/new", "--cfg-options", "default_hooks.checkpoint.save_best='mIoU'"],
         ["save_best='mIoU'", "accuracy"]),
    Case("early stopping monitors an unknown metric", ["train", T, "--work-dir", "{case}/new", "--cfg-options", "custom_hooks=[dict(type='EarlyStoppingHook', monitor='acc')]"],
         ["monitors 'acc'", "accuracy"]),
]


def folder_options_without_classes(num_classes: int) -> list[str]:
    """The folder dataset listing no classes: the class count comes only from ``model.num_classes``."""
    return [option.replace(", classes=('a', 'b', 'c')", "").replace("model.num_classes=3", f"model.num_classes={num_classes}")
            for option in folder_options()]


C2_CASES = [
    Case("mask value beyond model.num_classes, no classes listed", ["train", SEG, "--work-dir", "{case}/segwork", "--cfg-options",
                                                                    *folder_options_without_classes(4)],
         ["1.png", "class values [7]", "model.num_classes=4"], setup=seg_folder("value")),
    Case("cfg-options unclosed bracket", ["train", T, "--cfg-options", "a=[1,"], ["--cfg-options item 'a=[1,'", "unclosed '['"]),
    Case("cfg-options unmatched bracket", ["train", T, "--cfg-options", "train_cfg.max_epochs=1]"],
         ["'train_cfg.max_epochs=1]'", "unmatched ']'"]),
    Case("cfg-options unterminated quote", ["train", T, "--cfg-options", "work_dir='runs/a"], ["work_dir='runs/a", "unterminated"]),
]
CASES += C2_CASES


# data, sweep and classification surfaces (issue 23, item 7)

DET = "configs/det/faster_rcnn_small_generated.py"
CLS_FOLDER = "configs/cls/resnet18_imagefolder.py"
CLS_QUICK = "configs/cls/small_cnn_generated.py"
COCO_BREAKS: dict[str, Callable[[dict], None]] = {
    "": lambda content: None,
    "unknown category": lambda content: content["annotations"][0].update(category_id=9),
    "unlisted image": lambda content: content["annotations"][0].update(image_id=99),
    "box outside": lambda content: content["annotations"][0].update(bbox=[10, 2, 12, 8]),
    "no categories": lambda content: content.pop("categories"),
    "no boxes": lambda content: content.update(annotations=[]),
    "size": lambda content: content["images"][0].update(height=20),
}


def coco_data(bad: str = "", missing_image: int | None = None) -> Callable[[Path], None]:
    """``coco/ann.json`` and ``coco/img/``: three 16x16 images with a box each, broken as ``bad`` says."""
    def make(case_dir: Path) -> None:
        import json

        from PIL import Image

        (case_dir / "coco" / "img").mkdir(parents=True)
        images = [{"id": i, "file_name": f"{i}.png", "height": 16, "width": 16} for i in (1, 2, 3)]
        for image in images:
            if image["id"] != missing_image:
                Image.new("RGB", (16, 16), (60 * image["id"], 0, 0)).save(case_dir / "coco" / "img" / image["file_name"])
        content = {"images": images, "categories": [{"id": 1, "name": "box"}, {"id": 2, "name": "disc"}],
                   "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [2, 2, 8, 8], "area": 64.0, "iscrowd": 0} for i in (1, 2, 3)]}
        COCO_BREAKS[bad](content)
        (case_dir / "coco" / "ann.json").write_text(json.dumps(content))
    return make


def det_options(dataset: str = "type='CocoDetection', ann_file='{case}/coco/ann.json', data_prefix='{case}/coco/img'") -> list[str]:
    return [f"train_dataloader.dataset=dict(_delete_=True, {dataset})", "train_dataloader.batch_size=1", "train_dataloader.num_workers=0",
            "val_dataloader=None", "val_evaluator=None", "val_cfg=None", "custom_hooks=[]", "default_hooks.checkpoint.save_best=None",
            "train_cfg.max_iters=2"]


def voc_without_image(case_dir: Path) -> None:
    voc = case_dir / "VOCdevkit" / "VOC2007"
    write("VOCdevkit/VOC2007/ImageSets/Main/trainval.txt", "000001\n")(case_dir)
    write("VOCdevkit/VOC2007/Annotations/000001.xml", "<annotation><size><width>16</width><height>16</height></size><object><name>dog</name>"
          "<bndbox><xmin>2</xmin><ymin>2</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>")(case_dir)
    (voc / "JPEGImages").mkdir()


def image_folders(train: str, val: str, also: str = "") -> Callable[[Path], None]:
    """``imgs/{train,val}/<class>/`` with two 16x16 images per class (names space-separated); ``also``: one text file there."""
    def make(case_dir: Path) -> None:
        from PIL import Image

        for split, names in (("train", train), ("val", val)):
            (case_dir / "imgs" / split).mkdir(parents=True, exist_ok=True)
            for number, name in enumerate(names.split()):
                (case_dir / "imgs" / split / name).mkdir()
                for index in range(2):
                    Image.new("RGB", (16, 16), (40 * number, 100 * index, 0)).save(case_dir / "imgs" / split / name / f"{index}.png")
        if also:
            write(f"imgs/{also}", "not an image")(case_dir)
    return make


def cls_options(*extra: str) -> list[str]:
    return ["train_dataloader.dataset.data_root={case}/imgs", "val_dataloader.dataset.data_root={case}/imgs", "train_dataloader.batch_size=2",
            *(f"{split}_dataloader.{key}" for split in ("train", "val") for key in ("num_workers=0", "persistent_workers=False", "dataset.pipeline=[]")),
            "train_cfg.max_epochs=1", "custom_hooks=[]", *extra]


def file_list(lines: str) -> Callable[[Path], None]:
    def make(case_dir: Path) -> None:
        from PIL import Image

        (case_dir / "list").mkdir()
        Image.new("RGB", (16, 16)).save(case_dir / "list" / "a.png")
        (case_dir / "list" / "list.txt").write_text(lines)
    return make


FILE_LIST = ["train_dataloader=dict(_delete_=True, batch_size=2, dataset=dict(type='FileListDataset', ann_file='{case}/list/list.txt', classes=('a', 'b')))"]


def sweep(*grid: str) -> list[str]:
    return ["sweep", T, *(arg for item in grid for arg in ("--grid", item)), "--work-dir", "{case}/sweep"]


DATA_CASES = [
    # detection datasets
    Case("COCO lists an image not on disk", ["train", DET, "--cfg-options", *det_options()],
         ["ann.json: 1 of the 3 listed images are not on disk", "2.png (image id 2)"], setup=coco_data(missing_image=2)),
    Case("COCO data_prefix names the wrong folder", ["train", DET, "--cfg-options", *det_options(
        "type='CocoDetection', ann_file='{case}/coco/ann.json', data_prefix='{case}/coco/images'")],
         ["3 of the 3 listed images are not on disk", "coco/images/1.png", "data_prefix"], setup=coco_data()),
    Case("COCO category id not in the file", ["train", DET, "--cfg-options", *det_options()],
         ["annotation 1 has category id 9", "not among the file's categories [1, 2]"], setup=coco_data("unknown category")),
    Case("COCO annotation of an unlisted image", ["train", DET, "--cfg-options", *det_options()],
         ["annotation 1 refers to image id 99", "which the file does not list"], setup=coco_data("unlisted image")),
    Case("COCO box outside its image", ["train", DET, "--cfg-options", *det_options()],
         ["annotation 1 of image 1", "outside the 16x16 image"], setup=coco_data("box outside")),
    Case("COCO file without categories", ["train", DET, "--cfg-options", *det_options()],
         ["ann.json is not a COCO annotation file", "categories"], setup=coco_data("no categories")),
    Case("COCO annotation file missing", ["train", DET, "--cfg-options", *det_options(
        "type='CocoDetection', ann_file='{case}/nope.json'")], ["annotation file not found", "nope.json"]),
    Case("COCO classes name a category the file lacks", ["train", DET, "--cfg-options", *det_options(
        "type='CocoDetection', ann_file='{case}/coco/ann.json', data_prefix='{case}/coco/img', classes=('box', 'cat')")],
         ["classes ['cat'] are not among its categories ['box', 'disc']"], setup=coco_data()),
    Case("COCO with no box to train on", ["train", DET, "--cfg-options", *det_options()], ["ann.json: no images to read"], setup=coco_data("no boxes")),
    Case("COCO image size differs from the file", ["train", DET, "--cfg-options", *det_options(), "train_cfg.max_iters=3"],
         ["1.png: the image is (16, 16) (height, width) but its annotations say (20, 16) (image id 1)"], setup=coco_data("size")),
    Case("VOC split file missing", ["train", DET, "--cfg-options", *det_options("type='VOCDetection', data_root='{case}/VOCdevkit'")],
         ["VOC split file not found", "VOC2007/ImageSets/Main/trainval.txt"]),
    Case("VOC image missing", ["train", DET, "--cfg-options", *det_options("type='VOCDetection', data_root='{case}/VOCdevkit'")],
         ["1 of the 1 listed images are not on disk", "JPEGImages/000001.jpg (image id 0)"], setup=voc_without_image),
    # classification datasets
    Case("val class folder that train lacks", ["train", CLS_FOLDER, "--cfg-options", *cls_options()],
         ["imgs/val/fox: class 'fox' is not among the 2 classes", "imgs/train (cat, dog)"], setup=image_folders("cat dog", "cat dog fox")),
    Case("val split without a rare class trains", ["train", CLS_FOLDER, "--cfg-options", *cls_options()],
         ["imgs/val: no folder, so no images, of classes ['dog']", "training finished"], code=0, setup=image_folders("cat dog", "cat")),
    Case("val read with its own class list", ["train", CLS_FOLDER, "--cfg-options", *cls_options("val_dataloader.dataset.classes_from=None")],
         ["predicts 2 classes, but the evaluated dataset lists 3 (cat, dog, fox)", "classes_from='train'"], setup=image_folders("cat dog", "cat dog fox")),
    Case("empty class folder in train", ["train", CLS_FOLDER, "--cfg-options", *cls_options()],
         ["class folder", "imgs/train/dog holds no images"], setup=image_folders("cat", "cat", also="train/dog/notes.txt")),
    Case("val class folder holding no images", ["train", CLS_FOLDER, "--cfg-options", *cls_options()],
         ["imgs/val/dog holds no images"], setup=image_folders("cat dog", "cat", also="val/dog/readme.txt")),
    Case("train folder without class folders", ["train", CLS_FOLDER, "--cfg-options", *cls_options()],
         ["imgs/train has no class sub-folders"], setup=image_folders("", "cat", also="train/loose.png")),
    Case("classes_from names a missing folder", ["train", CLS_FOLDER, "--cfg-options", *cls_options("val_dataloader.dataset.classes_from=training")],
         ["classes_from folder not found", "imgs/training"], setup=image_folders("cat dog", "cat dog")),
    Case("classes and classes_from together", ["train", CLS_FOLDER, "--cfg-options", *cls_options("val_dataloader.dataset.classes=['cat','dog']")],
         ["imgs/val: give classes or classes_from, not both"], setup=image_folders("cat dog", "cat dog")),
    Case("classes list no folder that exists", ["train", CLS_FOLDER, "--cfg-options", *cls_options("train_dataloader.dataset.classes=['cow','fox']")],
         ["imgs/train has a folder for none of its 2 classes (cow, fox)"], setup=image_folders("cat dog", "cat dog")),
    Case("file list label outside the classes", ["train", CLS_QUICK, "--cfg-options", *FILE_LIST], ["list.txt: image", "has label 5, outside the 2 classes"],
         setup=file_list("a.png 5\n")),
    Case("file list line without a label", ["train", CLS_QUICK, "--cfg-options", *FILE_LIST], ["list.txt:2: expected '<image path> <class index>'"],
         setup=file_list("a.png 0\na.png\n")),
    # sweeps: every combination's config checked before the first run
    Case("sweep grid key misspelt", sweep("optim_wrapper.optimiser.lr=[0.1,0.2]"), ["did you mean 'optim_wrapper.optimizer'?"]),
    Case("sweep top-level grid key misspelt", sweep("trian_cfg.max_epochs=[1,2]"), ["the config has no 'trian_cfg'; did you mean 'train_cfg'?"]),
    Case("sweep grid key the config does not set", sweep("model.dropout=[0.1,0.3]"), ["the config has no 'model.dropout'", "--cfg-options model.dropout=VALUE"]),
    Case("sweep grid text for a number", sweep("optim_wrapper.optimizer.lr=[0.1,abc]"), ["'abc' is text, but the config's value is 0.1"]),
    Case("sweep grid unknown type in a later combination", sweep("optim_wrapper.optimizer.lr=[0.1,0.2]", "optim_wrapper.optimizer.type=[SGD,SDG]"),
         ["sweep combination lr=0.1_type=SDG", "unknown type 'SDG'", "Did you mean 'SGD'?"]),
    Case("sweep grid value listed twice", sweep("optim_wrapper.optimizer.lr=[0.1,0.1]"), ["would share the run directory", "lr=0.1"]),
    Case("sweep grid value replaces a component", sweep("optim_wrapper.optimizer=[0.1,0.2]"), ["0.1 would replace the dict at optim_wrapper.optimizer"]),
    Case("sweep grid not a list", sweep("optim_wrapper.optimizer.lr=0.1"), ["needs a non-empty list of values", "got 0.1"]),
    Case("sweep grid index outside a list", sweep("param_scheduler.5.end=[1,2]"), ["'param_scheduler' is a list of 2; '5' is not an index of it"]),
    Case("sweep grid bool given text", [*sweep("randomness.deterministic=[true,maybe]"), "--cfg-options", "randomness.deterministic=False"],
         ["'maybe' is text", "it takes true or false"]),
]
CASES += DATA_CASES


def inference_inputs(case_dir: Path) -> None:
    """Images as users have them: ordinary, 1x1, 16-bit PNG and TIFF, and files that only look like images."""
    import io

    import numpy as np
    from PIL import Image

    images = case_dir / "images"
    images.mkdir()
    Image.fromarray(np.full((40, 48, 3), 90, np.uint8)).save(images / "photo.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(case_dir / "one_pixel.png")
    depth = (np.arange(40 * 56).reshape(40, 56) * 29).astype(np.uint16)
    Image.fromarray(depth).save(case_dir / "depth16.png")
    Image.fromarray(depth).save(case_dir / "depth16.tif")
    jpeg = io.BytesIO()
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(jpeg, "JPEG")
    (case_dir / "truncated.jpg").write_bytes(jpeg.getvalue()[:120])
    (case_dir / "text.jpg").write_text("not an image")
    (case_dir / "empty.png").write_bytes(b"")
    (case_dir / "notes.txt").write_text("hello")
    (case_dir / "afile").write_text("x")
    (case_dir / "no_images").mkdir()
    (case_dir / "no_images" / "readme.md").write_text("nothing to see")
    (case_dir / "no_checkpoints").mkdir()
    (case_dir / "no_checkpoints" / "notes.txt").write_text("hello")
    (case_dir / "notes.pth").write_text("hello")
    (case_dir / "preds").mkdir()
    (case_dir / "preds" / "earlier_notes.txt").write_text("mine, keep it")


def inference_inputs_and_run_dir(case_dir: Path) -> None:
    """The inputs, and the seg copy's run directory (named by its start time) renamed to ``run``."""
    inference_inputs(case_dir)
    (run_dir,) = [p for p in (case_dir / "seg").iterdir() if p.is_dir()]
    run_dir.rename(case_dir / "seg" / "run")


def predict(source: str, *rest: str) -> list[str]:
    """``trainyard predict``, writing into the case's folder unless the case names ``--out``."""
    return ["predict", source, *rest, *([] if "--out" in rest else ["--out", "{case}/out"]), "--quiet"]


def mlflow_hook(**arguments: str) -> list[str]:
    listed = ", ".join(f"{key}={value!r}" for key, value in arguments.items())
    return ["train", T, "--cfg-options", f"custom_hooks=[dict(type='MLflowLoggerHook', {listed})]"]


PHOTO = "{case}/images/photo.png"
INFERENCE_CASES = [
    # where results go
    Case("predict --out is a file", predict("{seg}", PHOTO, "--out", "{case}/afile"), ["--out", "afile is a file"], setup=inference_inputs),
    Case("predict --out under a file", predict("{seg}", PHOTO, "--out", "{case}/afile/preds"), ["afile is a file"], setup=inference_inputs),
    Case("predict into a folder holding other files keeps them", predict("{seg}", PHOTO, "--out", "{case}/preds"),
         ["predicted 1 images"], code=0, setup=inference_inputs),
    Case("export --out is a file", ["export", "{seg}", "--format", "safetensors", "--out", "{case}/afile"], ["--out", "afile is a file"],
         setup=inference_inputs),
    # images
    Case("predict on a 1x1 image (segmentation)", predict("{seg}", "{case}/one_pixel.png"), ["predicted 1 images"],
         code=0, setup=inference_inputs),
    Case("predict on a 1x1 image (classification)", predict("{cls}", "{case}/one_pixel.png"), ["predicted 1 images"],
         code=0, setup=inference_inputs),
    Case("predict on 16-bit grey PNG and TIFF", predict("{seg}", "{case}/depth16.png", "{case}/depth16.tif"),
         ["predicted 2 images"], code=0, setup=inference_inputs),
    Case("predict on a .jpg that is not an image", predict("{seg}", "{case}/text.jpg"),
         ["text.jpg", "not a readable image"], setup=inference_inputs),
    Case("predict on an empty .png", predict("{seg}", "{case}/empty.png"), ["empty.png", "the file is empty"],
         setup=inference_inputs),
    Case("predict on a truncated .jpg", predict("{cls}", "{case}/truncated.jpg"),
         ["cannot read image", "truncated.jpg", "incomplete or truncated"], setup=inference_inputs),
    Case("predict on a text file", predict("{seg}", "{case}/notes.txt"), ["notes.txt is not an image file"],
         setup=inference_inputs),
    Case("predict on a folder without images", predict("{seg}", "{case}/no_images"), ["no_images holds no images"],
         setup=inference_inputs),
    Case("predict on a missing image", predict("{seg}", "{case}/nope.png"), ["nope.png does not exist"],
         setup=inference_inputs),
    # options
    Case("predict --batch-size 0", predict("{seg}", PHOTO, "--batch-size", "0"), ["--batch-size", "must be 1 or more, got 0"],
         setup=inference_inputs),
    Case("predict negative --batch-size", predict("{seg}", PHOTO, "--batch-size", "-2"), ["--batch-size", "got -2"], setup=inference_inputs),
    Case("predict negative --num-workers", predict("{seg}", PHOTO, "--num-workers", "-1"), ["--num-workers", "must be 0 or more, got -1"],
         setup=inference_inputs),
    Case("predict --topk 0", predict("{cls}", PHOTO, "--topk", "0"), ["--topk", "must be 1 or more, got 0"], setup=inference_inputs),
    Case("predict on an unknown device", predict("{seg}", PHOTO, "--out", "{case}/out", "--device", "gpu"), ["unknown device 'gpu'"],
         setup=inference_inputs),
    # where the model comes from
    Case("predict from a run directory", predict("{seg}/run", PHOTO), ["predicted 1 images"], code=0,
         setup=inference_inputs_and_run_dir),
    Case("predict from a missing checkpoint", predict("{case}/none.pth", PHOTO), ["none.pth does not exist"], setup=inference_inputs),
    Case("predict from a folder without checkpoints", predict("{case}/no_checkpoints", PHOTO), ["no checkpoint in", "no_checkpoints"],
         setup=inference_inputs),
    Case("predict from a file that is not a checkpoint", predict("{case}/notes.pth", PHOTO), ["notes.pth is not a torch checkpoint"],
         setup=inference_inputs),
    Case("predict with a config but no checkpoint", predict(SEG, PHOTO), ["give the images or folders to predict on after the checkpoint"],
         setup=inference_inputs),
    Case("predict with the config of another model", predict("configs/cls/small_cnn_generated.py", "{seg}/iter_8.pth", PHOTO),
         ["does not match the model", "Was iter_8.pth trained with this config (ImageClassifier)?"], setup=inference_inputs),
    Case("export with a config but no checkpoint", ["export", SEG], ["after the config configs/seg/unet.py, give the checkpoint"]),
    Case("export with an extra argument", ["export", "{seg}", "{seg}/iter_8.pth"], ["unexpected arguments", "iter_8.pth"]),
    Case("export with an input size below the model's minimum", ["export", "{seg}", "--format", "torchscript", "--input-size", "4", "40",
                                                               "--out", "{case}/out"], ["--input-size 4 40", "at least 8"]),
    Case("export with input size 0", ["export", "{seg}", "--input-size", "0", "0"], ["--input-size", "must be 1 or more, got 0"]),
    Case("export a detector to ONNX", ["export", "{det}", "--format", "onnx", "--out", "{case}/out"],
         ["FasterRCNN cannot be exported as onnx", "a safetensors export works for every model"]),
    # MLflow
    Case("MLflow store in a folder under a file", mlflow_hook(tracking_uri="{case}/afile/store"),
         ["MLflowLoggerHook tracking_uri=", "afile/store", "sqlite:///mlruns/mlflow.db"], setup=inference_inputs),
    Case("MLflow sqlite database under a file", mlflow_hook(tracking_uri="sqlite:///{case}/afile/mlflow.db"),
         ["MLflowLoggerHook tracking_uri=", "afile is a file", "http://host:5000"], setup=inference_inputs),
    Case("MLflow log_checkpoint misspelt", mlflow_hook(log_checkpoint="paths"), ["log_checkpoint must be 'path', 'file' or None, got 'paths'"]),
]
CASES += INFERENCE_CASES


CODE_RAN = "code_ran"
"""The file a checkpoint's saved config creates if anything ever runs it: no case may leave it behind."""


def checkpoint_whose_config(source: str, destination: str, addition: str) -> Callable[[Path], None]:
    """A copy of a trained checkpoint whose saved config text ends with ``addition`` (``{case}`` filled in)."""
    def make(case_dir: Path) -> None:
        state = torch.load(case_dir / source, weights_only=True)
        state["meta"]["config"] += "\n" + addition.replace("{case}", str(case_dir)) + "\n"
        torch.save(state, case_dir / destination)
    return make


RUNS_CODE = f"_x = __import__('os').system('touch {{case}}/{CODE_RAN}')"
IMPORTS_A_MODULE = "custom_imports = dict(imports=['trainyard_battery_module_that_must_not_load'])"
SEG_CODE = checkpoint_whose_config("seg/iter_8.pth", "seg/code.pth", RUNS_CODE)
TINY_CODE = checkpoint_whose_config("work/epoch_1.pth", "code.pth", RUNS_CODE)

def best_seg_runs_code(case_dir: Path) -> None:
    """The images, and the seg copy's best checkpoint (what ``predict WORK_DIR`` opens) rewritten to run code."""
    inference_inputs(case_dir)
    (best,) = (case_dir / "seg").glob("best_*.pth")
    checkpoint_whose_config(f"seg/{best.name}", f"seg/{best.name}", RUNS_CODE)(case_dir)


TRUST_CASES = [
    Case("predict a checkpoint whose saved config runs code", predict("{seg}/code.pth", PHOTO), ["is not plain data", "_x = __import__", "give its file too"],
         setup=lambda d: (inference_inputs(d), SEG_CODE(d))),
    Case("export a checkpoint whose saved config runs code", ["export", "{seg}/code.pth", "--format", "safetensors"], ["is not plain data"], setup=SEG_CODE),
    Case("predict a work dir whose best checkpoint runs code", predict("{seg}", PHOTO), ["is not plain data"], setup=best_seg_runs_code),
    Case("predict a checkpoint whose saved config names custom_imports", predict("{seg}/imports.pth", PHOTO), ["are not imported", "predicted 1 images"],
         code=0, setup=lambda d: (inference_inputs(d), checkpoint_whose_config("seg/iter_8.pth", "seg/imports.pth", IMPORTS_A_MODULE)(d))),
    Case("predict with the config file given trusts that file", predict(SEG, "{seg}/code.pth", PHOTO, *["--out", "{case}/out"]), ["predicted 1 images"],
         code=0, setup=lambda d: (inference_inputs(d), SEG_CODE(d))),
    Case("test a checkpoint whose saved config runs code", ["test", T, "{case}/code.pth", "--work-dir", "{case}/eval"], ["accuracy"], code=0, setup=TINY_CODE),
    Case("load_from a checkpoint whose saved config runs code", ["train", T, "--work-dir", "{case}/new", "--load-from", "{case}/code.pth",
                                                                 "--cfg-options", "train_cfg.max_epochs=1"], ["loaded weights from"], code=0, setup=TINY_CODE),
    Case("resume a checkpoint whose saved config runs code", ["train", T, "--work-dir", "{case}/new", "--resume", "{case}/code.pth",
                                                              "--cfg-options", "train_cfg.max_epochs=2"], ["resumed from"], code=0, setup=TINY_CODE),
]
CASES += TRUST_CASES


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("battery") / "work"
    result = run_trainyard("train", T, "--work-dir", str(work), "--cfg-options", "train_cfg.max_epochs=1")
    assert result.returncode == 0, result.stderr
    return work


QUICK_TASKS = ("seg", "cls", "det")
"""``{seg}`` in a case's arguments is its own copy of ``quick_run('seg')``, a trained work dir; the same for cls and det."""


def tasks_used(case: Case) -> list[str]:
    return [task for task in QUICK_TASKS if any(f"{{{task}}}" in arg for arg in case.args)]


def fingerprints(case_dir: Path) -> dict[str, str]:
    """Every file under ``case_dir`` (by relative path) and a hash of its bytes: what a command must not damage."""
    return {str(path.relative_to(case_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(case_dir.rglob("*")) if path.is_file()}


def run_case(case: Case, case_dir: Path, trained: Path, quick_runs: dict[str, Path]):
    work = case_dir / "work"
    shutil.copytree(trained, work)
    (work / "last_checkpoint").write_text(str(work / "epoch_1.pth"))
    for task in tasks_used(case):
        shutil.copytree(quick_runs[task], case_dir / task)
    if case.setup:
        case.setup(case_dir)
    before = fingerprints(case_dir)
    args = [a.replace("{case}", str(case_dir)) for a in case.args]
    for task in QUICK_TASKS:
        args = [a.replace(f"{{{task}}}", str(case_dir / task)) for a in args]
    if case.args[0] in ("train", "test") and "--work-dir" not in args:
        # resuming cases work in the trained copy; the others start a new run beside it
        args += ["--work-dir", str(work if "--resume" in args or case.args[0] == "test" or case.name.startswith("second run") else case_dir / "new")]
    started = time.monotonic()
    result = run_trainyard(*args, env=case.env)
    return result, time.monotonic() - started, case_dir, before


@pytest.fixture(scope="module")
def outcomes(trained, quick_run, tmp_path_factory):
    """Every case run once, two at a time."""
    root = tmp_path_factory.mktemp("cases")
    quick_runs = {task: quick_run(task) for task in QUICK_TASKS if any(task in tasks_used(case) for case in CASES)}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {case.name: pool.submit(run_case, case, root / f"case{i}", trained, quick_runs) for i, case in enumerate(CASES)}
        results = {name: future.result() for name, future in futures.items()}
    print(f"\nbad-input battery: {len(CASES)} cases in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return results


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_one_clear_message_and_loses_nothing(case, outcomes):
    result, seconds, case_dir, before = outcomes[case.name]
    output = result.stdout + result.stderr
    assert result.returncode == case.code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    for fragment in case.fragments:
        assert fragment in output, f"{fragment!r} not in:\n{output[-3000:]}"
    assert_nothing_damaged(case, case_dir, before)
    assert not (case_dir / CODE_RAN).exists(), "the command ran code from a file it was given"


def assert_nothing_damaged(case: Case, case_dir: Path, before: dict[str, str]) -> None:
    """Each file from before the command is still there with its bytes, except those the case declares."""
    after = fingerprints(case_dir)
    for name, digest in before.items():
        if any(fnmatch.fnmatch(name, pattern) for pattern in case.may_change):
            continue
        assert name in after, f"{name} was removed"
        assert after[name] == digest, f"{name} changed"
