"""The bad-input and fault battery: every mistake a user can make ends in one clear message.

Each case runs the real command line in a fresh process against a copy of one trained
work directory, and checks the exit status, that the message names the offending
thing, that no traceback is printed, and that the checkpoints that existed before
are byte-identical after. The cases run two at a time (they are independent).
"""

from __future__ import annotations

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
    Case("load_from pickled objects", ["train", T, "--work-dir", "{case}/new", "--load-from", "{case}/evil.pth"], ["refuses it", "TRAINYARD_SAFE_GLOBALS="],
         setup=pickled),
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


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("battery") / "work"
    result = run_trainyard("train", T, "--work-dir", str(work), "--cfg-options", "train_cfg.max_epochs=1")
    assert result.returncode == 0, result.stderr
    return work


def run_case(case: Case, case_dir: Path, trained: Path):
    work = case_dir / "work"
    shutil.copytree(trained, work)
    (work / "last_checkpoint").write_text(str(work / "epoch_1.pth"))
    if case.setup:
        case.setup(case_dir)
    before = {p: p.read_bytes() for p in work.glob("*.pth")}
    args = [a.replace("{case}", str(case_dir)) for a in case.args]
    if case.args[0] in ("train", "test") and "--work-dir" not in args:
        # resuming cases work in the trained copy; the others start a new run beside it
        args += ["--work-dir", str(work if "--resume" in args or case.args[0] == "test" or case.name.startswith("second run") else case_dir / "new")]
    started = time.monotonic()
    result = run_trainyard(*args, env=case.env)
    return result, time.monotonic() - started, before


@pytest.fixture(scope="module")
def outcomes(trained, tmp_path_factory):
    """Every case run once, two at a time."""
    root = tmp_path_factory.mktemp("cases")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {case.name: pool.submit(run_case, case, root / f"case{i}", trained) for i, case in enumerate(CASES)}
        results = {name: future.result() for name, future in futures.items()}
    print(f"\nbad-input battery: {len(CASES)} cases in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return results


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_one_clear_message_and_loses_nothing(case, outcomes):
    result, seconds, before = outcomes[case.name]
    output = result.stdout + result.stderr
    assert result.returncode == case.code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    for fragment in case.fragments:
        assert fragment in output, f"{fragment!r} not in:\n{output[-3000:]}"
    for path, content in before.items():
        assert path.read_bytes() == content, f"{path.name} changed"


def test_the_battery_has_at_least_sixty_cases():
    assert len(CASES) >= 60
