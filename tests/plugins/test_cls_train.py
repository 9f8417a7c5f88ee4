"""The quick classification config end to end through the command line, shrunk to seconds."""

import json

import pytest
from conftest import run_trainyard

CONFIG = "configs/cls/small_cnn_generated.py"
SMALL = [
    "train_cfg.max_epochs=2",
    "train_dataloader.dataset.length=64", "train_dataloader.batch_size=16",
    "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False",
    "val_dataloader.dataset.length=24", "test_dataloader.dataset.length=24",
    "default_hooks.logger.interval=2", "param_scheduler=[]",
    "custom_hooks=[dict(type='ClsVisualizationHook', max_images=4)]",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("cls")
    result = run_trainyard("train", CONFIG, "--work-dir", str(work_dir), "--cfg-options", *SMALL)
    assert result.returncode == 0, result.stderr
    return work_dir, result


def test_quick_config_trains_validates_and_draws(trained):
    work_dir, result = trained
    assert "model.num_classes: 6, the classes of train_dataloader.dataset" in result.stdout
    assert "Val (epoch 2)  accuracy_top1: " in result.stdout and "macro avg" in result.stdout
    (run_dir,) = [p for p in work_dir.iterdir() if p.is_dir()]
    assert "num_classes=6" in (run_dir / "config.py").read_text()  # 'auto' resolved in the saved config
    pictures = sorted(p.name for p in (run_dir / "vis").iterdir())
    assert pictures == [
        "val_confusion_matrix_iter0000004.png", "val_confusion_matrix_iter0000008.png",
        "val_predictions_iter0000004.png", "val_predictions_iter0000008.png",
    ]


def test_test_command_evaluates_the_best_checkpoint(trained):
    work_dir, _ = trained
    (best,) = work_dir.glob("best_accuracy_top1_epoch_*.pth")
    out = work_dir / "test.json"
    result = run_trainyard("test", CONFIG, str(best), "--work-dir", str(work_dir), "--out", str(out), "--cfg-options", *SMALL)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(out.read_text())
    assert 0.0 <= metrics["accuracy_top1"] <= 1.0 and {"accuracy_top2", "macro_f1", "f1.disc"} <= set(metrics)


def test_fine_tuning_on_fewer_classes_reinitialises_the_head_and_says_so(trained, tmp_path):
    work_dir, _ = trained
    three = "['disc', 'square', 'triangle']"
    result = run_trainyard(
        "train", CONFIG, "--work-dir", str(tmp_path), "--cfg-options", *SMALL, "train_cfg.max_epochs=1",
        f"model.checkpoint={work_dir / 'epoch_2.pth'}",
        f"train_dataloader.dataset.classes={three}", f"val_dataloader.dataset.classes={three}",
    )
    assert result.returncode == 0, result.stderr
    assert "model.num_classes: 3" in result.stdout
    assert "head.weight: file (6, 128) vs model (3, 128)" in result.stdout and "head.bias: file (6,) vs model (3,)" in result.stdout
    assert (tmp_path / "epoch_1.pth").is_file()


def test_plugins_command_shows_what_the_cls_plugin_registered():
    result = run_trainyard("plugins")
    assert result.returncode == 0, result.stderr
    block = result.stdout.split("trainyard_cls  [loaded]")[1].split("\n\n")[0]
    assert "MODELS (5): ClsTTAModel, ImageClassifier, SmallCNN, TimmBackbone, TorchvisionBackbone" in block
    assert "DATASETS (7): CIFAR10, CIFAR100, FashionMNIST, FileListDataset, GeneratedClsDataset, ImageFolder, MNIST" in block
    assert "METRICS (2): Accuracy, ClassificationReport" in block and "HOOKS (1): ClsVisualizationHook" in block
