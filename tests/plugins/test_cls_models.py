"""Classifiers on tiny batches: every backbone's loss and predictions, local weights, batch mixing."""

import sys

import pytest
import torch
import torchvision
from conftest import place_in_torch_hub_cache
from torch.nn import functional as F

from trainyard import MODELS, CheckpointError, ConfigError, PretrainedWeightsError

BACKBONES = [
    dict(type="SmallCNN"),
    dict(type="TorchvisionBackbone", name="resnet18"),
    dict(type="TorchvisionBackbone", name="resnet18", small_input=True),
    dict(type="TorchvisionBackbone", name="mobilenet_v3_small"),
    dict(type="TorchvisionBackbone", name="efficientnet_b0"),
    dict(type="TorchvisionBackbone", name="convnext_tiny"),
    dict(type="TorchvisionBackbone", name="vit_b_16", image_size=32),
]


def tiny_batch(size=32, count=2, num_classes=3):
    generator = torch.Generator().manual_seed(0)
    return {
        "inputs": torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8, generator=generator),
        "targets": torch.arange(count) % num_classes,
    }


def classifier(backbone, num_classes=3, **options):
    return MODELS.build(dict(type="ImageClassifier", backbone=backbone, num_classes=num_classes, **options))


@pytest.mark.parametrize("backbone", BACKBONES, ids=lambda b: b.get("name", b["type"]) + ("-small" if b.get("small_input") else ""))
def test_backbone_gives_a_loss_and_logits(backbone):
    model = classifier(backbone)
    losses = model(model.data_preprocessor(tiny_batch()), mode="loss")
    assert set(losses) == {"loss_cls"} and losses["loss_cls"].isfinite()
    losses["loss_cls"].backward()
    model.eval()
    with torch.no_grad():
        logits = model(model.data_preprocessor(tiny_batch()), mode="predict")
    assert logits.shape == (2, 3)


def test_timm_backbone_by_name_when_timm_is_installed():
    pytest.importorskip("timm", reason="timm is not installed; test_timm_missing_names_the_extra covers this case")
    model = classifier(dict(type="TimmBackbone", name="resnet10t"))
    assert model(model.data_preprocessor(tiny_batch()), mode="loss")["loss_cls"].isfinite()


def test_timm_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now fails, as when it is not installed
    with pytest.raises(ConfigError, match=r"needs the timm package.*pip install 'trainyard\[cls\]'"):
        classifier(dict(type="TimmBackbone", name="resnet10t"))


def test_unknown_torchvision_name_suggests_close_ones():
    with pytest.raises(ConfigError, match="no model named 'resnet19'; did you mean resnet18"):
        classifier(dict(type="TorchvisionBackbone", name="resnet19"))


def test_label_smoothing_is_torch_cross_entropy_with_smoothing():
    torch.manual_seed(0)
    model = classifier(dict(type="SmallCNN"), label_smoothing=0.2)
    batch = model.data_preprocessor(tiny_batch(count=4))
    model.eval()
    loss = model(batch, mode="loss")["loss_cls"]
    expected = F.cross_entropy(model(batch, mode="predict"), batch["targets"], label_smoothing=0.2)
    assert torch.allclose(loss, expected)


def test_mixup_and_cutmix_give_soft_targets_in_training_only():
    model = classifier(dict(type="SmallCNN"), num_classes=4, data_preprocessor=dict(
        batch_augments=[dict(type="MixUp", alpha=1.0), dict(type="CutMix", alpha=1.0)]))
    torch.manual_seed(0)
    mixed = model.data_preprocessor(tiny_batch(count=4, num_classes=4))
    assert mixed["targets"].shape == (4, 4) and torch.allclose(mixed["targets"].sum(dim=1), torch.ones(4))
    assert model(mixed, mode="loss")["loss_cls"].isfinite()
    model.eval()
    assert model.data_preprocessor(tiny_batch(count=4, num_classes=4))["targets"].shape == (4,)


def test_a_checkpoint_for_another_class_count_keeps_the_body_and_reinitialises_the_head(tmp_path, trainyard_log):
    source = classifier(dict(type="TorchvisionBackbone", name="resnet18"), num_classes=10)
    path = tmp_path / "resnet18.pth"
    torch.save(source.backbone.net.state_dict(), path)  # a torchvision state dict, as published
    model = classifier(dict(type="TorchvisionBackbone", name="resnet18"), num_classes=3, checkpoint=str(path))
    assert torch.equal(model.backbone.net.conv1.weight, source.backbone.net.conv1.weight)
    assert model.backbone.net.fc.weight.shape == (3, 512)
    assert "fc.weight: file (10, 512) vs model (3, 512)" in trainyard_log.text and "fc.bias" in trainyard_log.text


def test_a_trainyard_classifier_checkpoint_loads_into_the_backbone(tmp_path):
    source = classifier(dict(type="SmallCNN"), num_classes=3)
    path = tmp_path / "run.pth"
    torch.save({"meta": {}, "state_dict": source.state_dict()}, path)
    model = classifier(dict(type="SmallCNN"), num_classes=3, checkpoint=str(path))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))


@pytest.fixture
def offline_caches(tmp_path, monkeypatch):
    """Empty torch.hub and Hugging Face caches, downloads off."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TRAINYARD_OFFLINE", "1")
    return tmp_path


def place_in_hugging_face_cache(hf_home, repo_id, file_name, state):
    """A file as ``hf download`` leaves it: ``hub/models--ORG--NAME/snapshots/REVISION/FILE`` and ``refs/main``."""
    from safetensors.torch import save_file

    repository = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repository / "snapshots" / "0123abc").mkdir(parents=True)
    (repository / "refs").mkdir()
    (repository / "refs" / "main").write_text("0123abc")
    save_file(state, repository / "snapshots" / "0123abc" / file_name)
    return repository / "snapshots" / "0123abc" / file_name


def test_torchvision_weights_by_name_come_from_the_hub_cache_and_what_does_not_fit_stays_fresh(offline_caches, trainyard_log):
    weights = torchvision.models.resnet18().state_dict()
    place_in_torch_hub_cache(offline_caches / "torch", torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url, weights)
    model = classifier(dict(type="TorchvisionBackbone", name="resnet18", weights="DEFAULT", small_input=True))
    assert torch.equal(model.backbone.net.layer1[0].conv1.weight, weights["layer1.0.conv1.weight"])
    assert model.backbone.net.fc.out_features == 3
    assert "119 keys loaded, 0 missing, 0 unexpected, 3 re-initialised" in trainyard_log.text


def test_timm_pretrained_comes_from_the_hugging_face_cache_and_timm_adapts_the_classifier(offline_caches, trainyard_log):
    timm = pytest.importorskip("timm", reason="timm is not installed; test_timm_missing_names_the_extra covers this case")
    weights = timm.create_model("test_resnet.r160_in1k").state_dict()
    file = place_in_hugging_face_cache(offline_caches / "hf", "timm/test_resnet.r160_in1k", "model.safetensors", weights)
    model = classifier(dict(type="TimmBackbone", name="test_resnet.r160_in1k", pretrained=True))
    assert torch.equal(model.backbone.net.conv1[0].weight, weights["conv1.0.weight"])
    assert f"loaded timm's pretrained weights from {file}; 0 unexpected keys" in trainyard_log.text
    assert "state_dict" not in model.backbone.net.pretrained_cfg


def test_timm_pretrained_offline_without_the_file_names_it_and_the_hugging_face_cache(offline_caches):
    pytest.importorskip("timm", reason="timm is not installed; test_timm_missing_names_the_extra covers this case")
    with pytest.raises(PretrainedWeightsError) as error:
        classifier(dict(type="TimmBackbone", name="test_resnet.r160_in1k", pretrained=True))
    assert "\n" not in str(error.value)
    assert (f"needs model.safetensors of https://huggingface.co/timm/test_resnet.r160_in1k, which is not in the Hugging Face cache "
            f"{offline_caches / 'hf' / 'hub'}") in str(error.value)


def test_timm_pretrained_cfg_overlay_file_is_read_with_weights_only(offline_caches):
    pytest.importorskip("timm", reason="timm is not installed; test_timm_missing_names_the_extra covers this case")
    torch.save({"conv1.0.weight": torch.nn.Identity()}, offline_caches / "model.pth")
    overlay = dict(file=str(offline_caches / "model.pth"))
    with pytest.raises(CheckpointError, match="torch.nn.modules.linear.Identity.*refuses it"):
        classifier(dict(type="TimmBackbone", name="test_resnet.r160_in1k", pretrained=True, pretrained_cfg_overlay=overlay))
