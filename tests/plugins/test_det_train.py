"""The generated-shapes detection config end to end: command line, test, two processes."""

import json

from conftest import free_port, run_command, run_trainyard

from trainyard.checkpoint import read_checkpoint

CONFIG = "configs/det/faster_rcnn_small_generated.py"
SMALL = [
    "train_cfg.max_iters=4", "train_cfg.val_interval=4",
    "train_dataloader.dataset.length=16", "train_dataloader.batch_size=4",
    "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False",
    "val_dataloader.dataset.length=8", "test_dataloader.dataset.length=8",
    "train_dataloader.dataset.size=64", "val_dataloader.dataset.size=64", "test_dataloader.dataset.size=64",
    "model.min_size=64", "model.max_size=64",
    "default_hooks.logger.interval=2", "default_hooks.checkpoint.interval=4",
    "custom_hooks=[dict(type='DetVisualizationHook', interval=1, score_threshold=0.0)]",
]


def test_generated_config_trains_then_tests_from_the_command_line(tmp_path):
    train = run_trainyard("train", CONFIG, "--work-dir", str(tmp_path), "--cfg-options", *SMALL)
    assert train.returncode == 0, train.stderr
    assert "model.num_classes: 3" in train.stdout and "Val (iter 4)  bbox_mAP: " in train.stdout
    assert "per-class bbox AP" in train.stdout and "Average Precision" in train.stdout
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert sorted(p.name for p in (run_dir / "vis").iterdir()) == ["val_detections_0_iter0000004.png"]
    out = tmp_path / "test.json"
    test = run_trainyard("test", CONFIG, str(tmp_path / "iter_4.pth"), "--work-dir", str(tmp_path), "--out", str(out), "--cfg-options", *SMALL)
    assert test.returncode == 0, test.stderr
    metrics = json.loads(out.read_text())
    assert 0.0 <= metrics["bbox_mAP_50"] <= 1.0 and {"bbox_mAP", "bbox_AR_100", "bbox_AP.ellipse"} <= set(metrics)


def test_dist_train_script_trains_the_detector_on_two_processes(tmp_path):
    result = run_command(["bash", "tools/dist_train.sh", CONFIG, "2", "--work-dir", str(tmp_path), "--cfg-options", *SMALL],
                         env={"PORT": str(free_port())})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world size 2" in result.stdout and "Val (iter 4)  bbox_mAP: " in result.stdout
    assert read_checkpoint(tmp_path / "iter_4.pth")["meta"]["world_size"] == 2


def test_plugins_command_shows_what_the_det_plugin_registered():
    result = run_trainyard("plugins")
    assert result.returncode == 0, result.stderr
    block = result.stdout.split("trainyard_det  [loaded]")[1].split("\n\n")[0]
    assert "MODELS (5): FCOS, FasterRCNN, RetinaNet, SSDlite, SmallDetBackbone" in block
    assert "DATASETS (3): CocoDetection, GeneratedDetDataset, VOCDetection" in block
    assert "METRICS (1): CocoMetric" in block and "HOOKS (1): DetVisualizationHook" in block
    assert "TRANSFORMS (1): ResizeKeepRatio" in block


def test_coco_config_trains_on_a_coco_export_by_pointing_it_at_the_files(tmp_path):
    """The COCO 1x config on a tiny COCO-format export, only shrunk in image size and length."""
    from trainyard import DATASETS

    train_json = DATASETS.build(dict(type="GeneratedDetDataset", length=4, size=64, split="train")).export_coco(tmp_path / "train")
    val_json = DATASETS.build(dict(type="GeneratedDetDataset", length=2, size=64, split="val")).export_coco(tmp_path / "val")
    result = run_trainyard(
        "train", "configs/det/faster_rcnn_r50_fpn_1x_coco.py", "--work-dir", str(tmp_path / "work"), "--cfg-options",
        f"train_dataloader.dataset.ann_file={train_json}", f"train_dataloader.dataset.data_prefix={tmp_path / 'train' / 'images'}",
        f"val_dataloader.dataset.ann_file={val_json}", f"val_dataloader.dataset.data_prefix={tmp_path / 'val' / 'images'}",
        "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False",
        "val_dataloader.num_workers=0", "val_dataloader.persistent_workers=False",
        "model.min_size=64", "model.max_size=64", "train_cfg.max_epochs=1", "custom_hooks=[]",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "model.num_classes: 3" in result.stdout and "Val (epoch 1)  bbox_mAP: " in result.stdout
    assert (tmp_path / "work" / "epoch_1.pth").is_file()
