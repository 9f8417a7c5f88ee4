"""The default config end to end through the command line, shrunk to seconds."""

import json

from conftest import run_trainyard

SMALL = [
    "train_cfg.max_iters=6", "train_cfg.val_interval=6",
    "train_dataloader.dataset.length=16", "train_dataloader.dataset.size=32",
    "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False",
    "val_dataloader.dataset.length=8", "val_dataloader.dataset.size=32",
    "test_dataloader.dataset.length=8", "test_dataloader.dataset.size=32",
    "default_hooks.logger.interval=2", "default_hooks.checkpoint.interval=3",
    "custom_hooks=[dict(type='SegVisualizationHook', interval=1)]",
]


def test_unet_config_trains_then_tests_from_the_command_line(tmp_path):
    train = run_trainyard("train", "configs/seg/unet.py", "--work-dir", str(tmp_path), "--cfg-options", *SMALL)
    assert train.returncode == 0, train.stderr
    assert "Val (iter 6)  mIoU: " in train.stdout and "per-class results" in train.stdout
    assert (tmp_path / "iter_6.pth").is_file() and (tmp_path / "iter_3.pth").is_file()
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert sorted(p.name for p in (run_dir / "vis").iterdir()) == ["val_confusion_matrix_iter0000006.png", "val_predictions_0_iter0000006.png"]
    metrics_file = tmp_path / "test.json"
    test = run_trainyard("test", "configs/seg/unet.py", str(tmp_path / "iter_6.pth"), "--work-dir", str(tmp_path),
                         "--out", str(metrics_file), "--cfg-options", *SMALL)
    assert test.returncode == 0, test.stderr
    metrics = json.loads(metrics_file.read_text())
    assert 0.0 <= metrics["mIoU"] <= 1.0 and {"mAcc", "aAcc", "IoU.disc"} <= set(metrics)


def test_plugins_command_shows_what_the_seg_plugin_registered():
    result = run_trainyard("plugins")
    assert result.returncode == 0, result.stderr
    block = result.stdout.split("trainyard_seg  [loaded]")[1].split("\n\n")[0]
    assert "MODELS (6): DeepLabV3MobileNetV3, DeepLabV3ResNet50, FCNResNet50, LRASPPMobileNetV3, SegTTAModel, UNet" in block
    assert "DATASETS (4): CityscapesDataset, FolderSegDataset, ShapesDataset, VOCSegDataset" in block
    assert "METRICS (1): IoUMetric" in block and "HOOKS (1): SegVisualizationHook" in block
