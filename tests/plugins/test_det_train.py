"""The generated-shapes detection config end to end: command line, test, two processes."""

import json

from conftest import free_port, place_in_torch_hub_cache, run_command, run_trainyard
from torchvision.models import ResNet50_Weights, resnet50

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
    "custom_hooks=[dict(type='DetVisualizationHook', interval=1, score_thr=0.0)]",
]


def test_generated_config_trains_then_tests_from_the_command_line(tmp_path):
    train = run_trainyard("train", CONFIG, "--work-dir", str(tmp_path), "--cfg-options", *SMALL)
    assert train.returncode == 0, train.stderr
    assert "model.num_classes: 3" in train.stdout and "Val (iter 4)  bbox_mAP: " in train.stdout
    assert "per-class bbox AP" in train.stdout and "Average Precision" in train.stdout
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert sorted(p.name for p in (run_dir / "vis").iterdir()) == ["val_confusion_matrix_iter0000004.png", "val_detections_0_iter0000004.png"]
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
    assert "MODELS (6): DetTTAModel, FCOS, FasterRCNN, RetinaNet, SSDlite, SmallDetBackbone" in block
    assert "DATASETS (3): CocoDetection, GeneratedDetDataset, VOCDetection" in block
    assert "METRICS (1): CocoMetric" in block and "HOOKS (1): DetVisualizationHook" in block
    assert "TRANSFORMS (1): ResizeKeepRatio" in block


def _coco_export_options(tmp_path, length=4):
    from trainyard import DATASETS

    train_json = DATASETS.build(dict(type="GeneratedDetDataset", length=length, size=64, split="train")).export_coco(tmp_path / "train")
    val_json = DATASETS.build(dict(type="GeneratedDetDataset", length=2, size=64, split="val")).export_coco(tmp_path / "val")
    return [
        f"train_dataloader.dataset.ann_file={train_json}", f"train_dataloader.dataset.data_prefix={tmp_path / 'train' / 'images'}",
        f"val_dataloader.dataset.ann_file={val_json}", f"val_dataloader.dataset.data_prefix={tmp_path / 'val' / 'images'}",
        "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False",
        "val_dataloader.num_workers=0", "val_dataloader.persistent_workers=False",
        "model.min_size=64", "model.max_size=64", "train_cfg.max_epochs=1", "custom_hooks=[]",
    ]


def test_coco_config_trains_on_a_coco_export_by_pointing_it_at_the_files(tmp_path):
    """The COCO 1x config on a tiny COCO-format export, only shrunk in image size and length, from ImageNet weights in the cache."""
    weights = place_in_torch_hub_cache(tmp_path / "torch", ResNet50_Weights.IMAGENET1K_V1.url, resnet50().state_dict())
    result = run_trainyard(
        "train", "configs/det/faster_rcnn_r50_fpn_1x_coco.py", "--work-dir", str(tmp_path / "work"), "--cfg-options",
        *_coco_export_options(tmp_path), env={"TORCH_HOME": str(tmp_path / "torch"), "TRAINYARD_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "model.num_classes: 3" in result.stdout and "Val (epoch 1)  bbox_mAP: " in result.stdout
    assert (f"FasterRCNN: loaded ResNet50_Weights.IMAGENET1K_V1 from {weights}: 320 keys, 0 missing, 0 unexpected "
            "(torchvision's builder loads strictly)") in result.stdout
    assert (tmp_path / "work" / "epoch_1.pth").is_file()


def test_coco_config_offline_without_its_imagenet_weights_stops_in_one_line_before_training(tmp_path):
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    result = run_trainyard(
        "train", "configs/det/faster_rcnn_r50_fpn_1x_coco.py", "--work-dir", str(tmp_path / "work"), "--cfg-options",
        *_coco_export_options(tmp_path, length=2), env={"TORCH_HOME": str(tmp_path / "torch"), "TRAINYARD_OFFLINE": "1"},
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.count("\n") == 1 and f"needs resnet50-0676ba61.pth, which is not in torch.hub's cache {cache}" in result.stderr
    assert not list((tmp_path / "work").glob("*.pth"))


def test_auto_scale_lr_flag_scales_the_1x_lr_to_one_process_of_two_images(tmp_path):
    """lr 0.02 is for 16 images a step; 2 images on one process train with 0.0025 (one iteration, weight-free model)."""
    from trainyard import DATASETS

    train_json = DATASETS.build(dict(type="GeneratedDetDataset", length=2, size=64, split="train")).export_coco(tmp_path / "train")
    result = run_trainyard(
        "train", "configs/det/faster_rcnn_r50_fpn_1x_coco.py", "--auto-scale-lr", "--work-dir", str(tmp_path / "work"), "--cfg-options",
        "model=dict(_delete_=True, type='FasterRCNN', variant='resnet50_fpn', num_classes='auto', min_size=64, max_size=64)",
        f"train_dataloader.dataset.ann_file={train_json}", f"train_dataloader.dataset.data_prefix={tmp_path / 'train' / 'images'}",
        "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False", "train_cfg.max_epochs=1",
        "val_dataloader=None", "val_cfg=None", "val_evaluator=None", "test_dataloader=None", "test_evaluator=None", "test_cfg=None",
        "default_hooks.checkpoint=None", "custom_hooks=[]",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("auto_scale_lr: lr 0.02 -> 0.0025 (x0.125 = total batch 2 / base_batch_size 16; "
            "total batch = batch_size 2 x world size 1 x accumulative_counts 1)") in result.stdout


def test_visualization_hook_takes_score_thr_and_its_old_name_with_one_warning_line(trainyard_log):
    from trainyard import HOOKS

    assert HOOKS.build(dict(type="DetVisualizationHook", score_thr=0.5)).score_thr == 0.5
    assert "deprecated" not in trainyard_log.text
    assert HOOKS.build(dict(type="DetVisualizationHook", score_threshold=0.1)).score_thr == 0.1
    assert {r.getMessage() for r in trainyard_log.records if "deprecated" in r.getMessage()} == {
        "DetVisualizationHook: 'score_threshold' is deprecated and will be removed, use 'score_thr' "
        "(score_threshold=0.1 is used as score_thr=0.1)"}
