"""Pretrained weights: found in the library's own cache, read with weights_only=True, logged, never replaced by random ones.

Tests never download: weight files (random values, the right architecture) are saved
under the exact names torchvision expects in a temporary ``TORCH_HOME``, and
``TRAINYARD_OFFLINE=1`` keeps every lookup off the network.
"""

import pytest
import torch
import torchvision

from conftest import REPO, place_in_torch_hub_cache

from trainyard import MODELS, CheckpointError, ConfigError, PretrainedWeightsError
from trainyard.config import load_config

RESNET50 = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url
MOBILENET_V3_LARGE = torchvision.models.MobileNet_V3_Large_Weights.IMAGENET1K_V1.url
RESNET18 = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
SHIPPED_WITH_WEIGHTS = {
    "configs/det/faster_rcnn_r50_fpn_1x_coco.py": "resnet50-0676ba61.pth",
    "configs/det/fcos_r50_fpn_1x_coco.py": "resnet50-0676ba61.pth",
    "configs/det/retinanet_r50_fpn_1x_coco.py": "resnet50-0676ba61.pth",
    "configs/det/ssdlite_mobilenetv3_coco.py": "mobilenet_v3_large-8738ca79.pth",
    "configs/seg/deeplabv3_r50_cityscapes.py": "resnet50-0676ba61.pth",
}
WEIGHT_KEYS = ("weights", "weights_backbone", "pretrained", "init_cfg", "checkpoint")


def _weight_settings(node) -> list:
    if isinstance(node, dict):
        found = [key for key, value in node.items() if key in WEIGHT_KEYS and value]
        return found + [key for value in node.values() for key in _weight_settings(value)]
    if isinstance(node, (list, tuple)):
        return [key for value in node for key in _weight_settings(value)]
    return []


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty torch.hub cache, with downloads off."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("TRAINYARD_OFFLINE", "1")
    return tmp_path / "torch"


@pytest.fixture(scope="module")
def imagenet_files(tmp_path_factory):
    """resnet50 and mobilenet_v3_large weights (random values), once for the module."""
    home = tmp_path_factory.mktemp("torch")
    place_in_torch_hub_cache(home, RESNET50, torchvision.models.resnet50().state_dict())
    place_in_torch_hub_cache(home, MOBILENET_V3_LARGE, torchvision.models.mobilenet_v3_large().state_dict())
    return home


def _shipped_model(path: str) -> dict:
    model = load_config(REPO / path).model.to_dict()
    if model.get("num_classes") == "auto":
        model["num_classes"] = 3
    return model


def test_exactly_the_shipped_reference_configs_name_pretrained_weights_and_the_quick_ones_none():
    experiments = sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").rglob("*.py") if "_base_" not in p.parts)
    naming = {path for path in experiments if _weight_settings(load_config(REPO / path).model.to_dict())}
    assert naming == set(SHIPPED_WITH_WEIGHTS)


@pytest.mark.parametrize("path", sorted(SHIPPED_WITH_WEIGHTS))
def test_shipped_config_loads_its_weights_from_the_cache_and_logs_source_and_zero_unexpected_keys(
        path, imagenet_files, monkeypatch, trainyard_log):
    monkeypatch.setenv("TORCH_HOME", str(imagenet_files))
    monkeypatch.setenv("TRAINYARD_OFFLINE", "1")
    MODELS.build(_shipped_model(path))
    file = imagenet_files / "hub" / "checkpoints" / SHIPPED_WITH_WEIGHTS[path]
    loaded = sorted({r.getMessage() for r in trainyard_log.records if f"from {file}: " in r.getMessage()})
    assert len(loaded) == 1 and loaded[0].endswith("0 missing, 0 unexpected (torchvision's builder loads strictly)"), trainyard_log.text


@pytest.mark.parametrize("path", sorted(SHIPPED_WITH_WEIGHTS))
def test_shipped_config_offline_without_the_file_is_one_line_naming_file_and_cache_folder(path, offline_cache):
    with pytest.raises(PretrainedWeightsError) as error:
        MODELS.build(_shipped_model(path))
    message = str(error.value)
    assert "\n" not in message
    assert f"needs {SHIPPED_WITH_WEIGHTS[path]}, which is not in torch.hub's cache {offline_cache / 'hub' / 'checkpoints'}" in message
    assert "downloads are off: TRAINYARD_OFFLINE=1" in message


class _Payload:
    """Unpickling this creates a file: the proof that a load ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_poisoned_cached_file_is_refused_not_executed_where_torchvision_would_unpickle_it(offline_cache, tmp_path):
    marker = tmp_path / "executed"
    place_in_torch_hub_cache(offline_cache, MOBILENET_V3_LARGE, {"features.0.0.weight": _Payload(marker)})
    with pytest.raises(CheckpointError, match="refuses it"):
        MODELS.build(dict(type="LRASPPMobileNetV3", num_classes=2, weights_backbone="IMAGENET1K_V1"))
    assert not marker.exists()


def test_a_cached_file_of_another_architecture_is_one_line_naming_it(offline_cache):
    file = place_in_torch_hub_cache(offline_cache, MOBILENET_V3_LARGE, {"conv.weight": torch.zeros(1)})
    with pytest.raises(PretrainedWeightsError) as error:
        MODELS.build(dict(type="LRASPPMobileNetV3", num_classes=2, weights_backbone="IMAGENET1K_V1"))
    assert str(error.value).startswith(f"LRASPPMobileNetV3: {file} is not MobileNet_V3_Large_Weights.IMAGENET1K_V1 (Error(s) in loading")
    assert "\n" not in str(error.value)


def test_init_cfg_loads_the_prefixed_part_of_a_file_url_into_the_zoo_model_through_the_hub_cache(offline_cache, tmp_path, trainyard_log):
    """mmdet's ``prefix='backbone.'``: a detector's backbone keys, stripped, into a torchvision backbone."""
    weights = torchvision.models.resnet18().state_dict()
    source = tmp_path / "detector.pth"
    torch.save({"meta": {}, "state_dict": {**{f"backbone.{k}": v for k, v in weights.items()}, "head.weight": torch.zeros(1)}}, source)
    model = MODELS.build(dict(type="ImageClassifier", num_classes=3, backbone=dict(
        type="TorchvisionBackbone", name="resnet18",
        init_cfg=dict(type="Pretrained", checkpoint=source.as_uri(), prefix="backbone."))))
    assert torch.equal(model.backbone.net.layer4[1].conv2.weight, weights["layer4.1.conv2.weight"])
    assert (offline_cache / "hub" / "checkpoints" / "detector.pth").is_file()
    assert (f"initialised ResNet from model.backbone.net: {source.as_uri()} ({offline_cache / 'hub' / 'checkpoints' / 'detector.pth'}): "
            "120 keys loaded, 0 missing, 0 unexpected, 2 re-initialised") in trainyard_log.text


def test_init_cfg_torchvision_name_means_what_mmengine_means(offline_cache):
    """``torchvision://resnet18`` is ResNet18_Weights.IMAGENET1K_V1, the file mmdet's configs were written for."""
    weights = torchvision.models.resnet18().state_dict()
    place_in_torch_hub_cache(offline_cache, RESNET18, weights)
    backbone = MODELS.build(dict(type="TorchvisionBackbone", name="resnet18", num_classes=1000,
                                 init_cfg=dict(type="Pretrained", checkpoint="torchvision://resnet18")))
    assert torch.equal(backbone.net.fc.weight, weights["fc.weight"])


@pytest.mark.parametrize(("init_cfg", "error", "words"), [
    (dict(type="Kaiming", layer="Conv2d"), ConfigError, "type 'Kaiming' is not applied by trainyard"),
    (dict(type="Pretrained", checkpoint="open-mmlab://resnet50_caffe"), ConfigError, "open-mmlab:// is not a source trainyard reads"),
    (dict(type="Pretrained", checkpoint="torchvision://resnet5"), ConfigError, "no torchvision model 'resnet5'; did you mean"),
    (dict(type="Pretrained", checkpoint="{tmp}/missing.pth"), PretrainedWeightsError, "missing.pth does not exist"),
    (dict(type="Pretrained", checkpoint="{tmp}/weights.pth", prefix="backbone."), PretrainedWeightsError, "no key starts with prefix='backbone.'"),
    (dict(type="Pretrained", checkpoint="{tmp}/weights.pth", strict=True), ConfigError, "unknown: ['strict']"),
])
def test_init_cfg_mistakes_are_one_line(init_cfg, error, words, offline_cache, tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 4)}, tmp_path / "weights.pth")
    init_cfg = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in init_cfg.items()}
    with pytest.raises(error) as raised:
        MODELS.build(dict(type="SmallCNN", num_classes=2, init_cfg=init_cfg))
    assert words in str(raised.value) and "\n" not in str(raised.value)


def test_a_cached_file_of_another_architecture_never_starts_a_classifier_from_random_weights(offline_cache):
    place_in_torch_hub_cache(offline_cache, RESNET18, torchvision.models.mobilenet_v3_small().state_dict())
    with pytest.raises(PretrainedWeightsError, match=r"resnet18-f37072fd.pth is not ResNet18_Weights.IMAGENET1K_V1 .* delete it"):
        MODELS.build(dict(type="TorchvisionBackbone", name="resnet18", num_classes=4, weights="IMAGENET1K_V1"))


def test_init_cfg_from_a_file_covering_under_half_of_the_model_is_refused(offline_cache):
    place_in_torch_hub_cache(offline_cache, RESNET18, torchvision.models.resnet18().state_dict())
    model = dict(type="TorchvisionBackbone", name="resnet50", num_classes=4, init_cfg=dict(type="Pretrained", checkpoint="torchvision://resnet18"))
    with pytest.raises(PretrainedWeightsError, match=r"has only \d+ of the \d+ keys .* more than half would start from random"):
        MODELS.build(model)


def test_an_init_cfg_given_as_a_string_is_one_clear_error():
    with pytest.raises(ConfigError, match="init_cfg must be dict"):
        MODELS.build(dict(type="TorchvisionBackbone", name="resnet18", num_classes=4, init_cfg="torchvision://resnet18"))


def test_a_model_whose_weights_a_checkpoint_replaces_fetches_no_pretrained_file(offline_cache, tmp_path):
    """Evaluating or resuming a fine-tuned run needs neither the ImageNet file nor any URL its saved config names."""
    from trainyard.pretrained import weights_from_checkpoint

    requests = [dict(type="TorchvisionBackbone", name="resnet18", num_classes=4, weights="IMAGENET1K_V1"),
                dict(type="TorchvisionBackbone", name="resnet18", num_classes=4,
                     init_cfg=dict(type="Pretrained", checkpoint=f"file://{tmp_path}/planted/resnet18-f37072fd.pth")),
                dict(type="FasterRCNN", num_classes=3, variant="resnet50_fpn", weights_backbone="IMAGENET1K_V1")]
    for model in requests:
        with pytest.raises(PretrainedWeightsError):
            MODELS.build(model)  # without the context: the file is needed, and offline it is one line
        with weights_from_checkpoint():
            built = MODELS.build(model)
        assert not list(offline_cache.rglob("*.pth"))
    frozen = type(built.net.backbone.body.bn1).__name__
    assert frozen == "FrozenBatchNorm2d"  # the architecture is the one the weights would give, so the checkpoint fits
