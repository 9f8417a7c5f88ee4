"""Dataset wrappers (concat, repeat, class-balanced) and the aspect-ratio batch sampler."""

import json
from types import SimpleNamespace

import pytest
import torch
from conftest import assert_same_weights, tiny_cfg, train_cli
from mmengine.dataset import ClassBalancedDataset as MMEngineClassBalanced

from trainyard import DATASETS, ConfigError
from trainyard.checkpoint import read_checkpoint
from trainyard.config import validate_config
from trainyard.data import build_dataloader
from trainyard.loops import EpochBasedTrainLoop
from trainyard.runner import Runner
from trainyard.samplers import AspectRatioBatchSampler, DefaultSampler


class Annotated(torch.utils.data.Dataset):
    """Items are their own index; the annotation gives each image's classes and size."""

    def __init__(self, cat_ids, portrait=(), classes=("a", "b", "c")):
        self.cat_ids, self.portrait, self.classes = cat_ids, set(portrait), tuple(classes)

    @property
    def metainfo(self):
        return {"classes": self.classes}

    def __len__(self):
        return len(self.cat_ids)

    def __getitem__(self, index):
        return index

    def get_cat_ids(self, index):
        return self.cat_ids[index]

    def get_data_info(self, index):
        return {"width": 10, "height": 20} if index in self.portrait else {"width": 20, "height": 10}


def test_repeat_dataset_repeats_every_sample_and_keeps_the_metainfo():
    inner = Annotated([[0], [1], [2]], portrait=[1])
    repeated = DATASETS.build(dict(type="RepeatDataset", times=3, dataset=inner))
    assert len(repeated) == 9
    assert [repeated[i] for i in range(9)] == [0, 1, 2] * 3
    assert repeated.metainfo == {"classes": ("a", "b", "c")}
    assert repeated.get_data_info(4) == {"width": 10, "height": 20} and repeated.get_cat_ids(5) == [2]


def test_concat_dataset_builds_its_configs_and_maps_indices_to_each_dataset():
    concat = DATASETS.build(dict(type="ConcatDataset", datasets=[
        dict(type="GeneratedDetDataset", length=3, size=32), dict(type="GeneratedDetDataset", length=2, size=48, split="b"),
    ]))
    assert isinstance(concat, torch.utils.data.ConcatDataset) and len(concat) == 5
    assert concat.metainfo["classes"] == ("rectangle", "ellipse", "triangle")
    assert [concat.get_data_info(i)["width"] for i in range(5)] == [32, 32, 32, 48, 48]
    assert concat.get_cat_ids(3) == concat.datasets[1].get_cat_ids(0)


def test_concatenating_datasets_of_different_classes_is_refused():
    with pytest.raises(ConfigError, match=r"datasets\[1\] has classes \['x'\].*share one label space"):
        DATASETS.build(dict(type="ConcatDataset", datasets=[Annotated([[0]]), Annotated([[0]], classes=["x"])]))


def test_class_balanced_repeat_factors_are_mmengines():
    cat_ids = [[0]] * 16 + [[0, 1]] * 2 + [[2]] + [[]] + [[1, 2, 2]]  # class 2 in 2 of 21 images, class 1 in 3
    inner = Annotated(cat_ids)
    balanced = DATASETS.build(dict(type="ClassBalancedDataset", oversample_thr=0.3, dataset=inner))
    expected = MMEngineClassBalanced._get_repeat_factors(SimpleNamespace(dataset=inner), inner, 0.3)
    assert balanced.repeat_factors == expected
    assert balanced.repeat_factors[18] == pytest.approx((0.3 / (2 / 21)) ** 0.5)  # max(1, sqrt(t / f(c)))
    assert balanced.repeat_factors[19] == 1.0  # no label: never repeated
    assert balanced.repeat_indices == list(range(16)) + [16, 16, 17, 17, 18, 18, 19, 20, 20]
    assert [balanced[i] for i in range(len(balanced))] == balanced.repeat_indices
    assert balanced.metainfo == inner.metainfo


def test_class_balanced_over_a_dataset_without_class_annotations_names_the_method():
    with pytest.raises(ConfigError, match=r"ClassBalancedDataset needs TensorDataset\.get_cat_ids\(index\)"):
        DATASETS.build(dict(type="ClassBalancedDataset", oversample_thr=0.1, dataset=torch.utils.data.TensorDataset(torch.zeros(3))))


def keys_sampler(dataset, **options):
    return DefaultSampler(dataset, seed=3, **options)


def test_aspect_ratio_batches_hold_one_orientation_until_the_remainder():
    dataset = Annotated([[0]] * 11, portrait=[0, 3, 4, 8])
    batches = list(AspectRatioBatchSampler(keys_sampler(dataset), batch_size=2))
    orientations = [{dataset.get_data_info(index)["width"] for _, index in batch} for batch in batches]
    assert len(batches) == 6 and all(len(o) == 1 for o in orientations[:5])  # 7 landscape and 4 portrait: 5 pure batches
    assert sorted(index for batch in batches for _, index in batch) == list(range(11))
    assert len(AspectRatioBatchSampler(keys_sampler(dataset), batch_size=2, drop_last=True)) == 5
    assert len(list(AspectRatioBatchSampler(keys_sampler(dataset), batch_size=2, drop_last=True))) == 5


def test_aspect_ratio_sampler_resumes_at_a_batch_and_follows_the_epoch():
    dataset = Annotated([[0]] * 13, portrait=[1, 2, 7, 11, 12])
    sampler = AspectRatioBatchSampler(keys_sampler(dataset), batch_size=3)
    sampler.set_epoch(2)
    whole = list(sampler)
    sampler.set_start(2)
    assert list(sampler) == whole[2:]
    assert list(sampler) == whole  # the start applies to one pass
    assert {epoch for batch in whole for epoch, _ in batch} == {2}
    sampler.set_epoch(3)
    assert list(sampler) != whole


def test_aspect_ratio_sampler_under_ddp_gives_every_rank_the_same_number_of_batches(monkeypatch):
    import trainyard.samplers

    dataset = Annotated([[0]] * 23, portrait=range(0, 23, 3))
    monkeypatch.setattr(trainyard.samplers, "get_world_size", lambda: 3)
    seen = []
    for rank in range(3):
        monkeypatch.setattr(trainyard.samplers, "get_rank", lambda rank=rank: rank)
        batches = list(AspectRatioBatchSampler(keys_sampler(dataset), batch_size=2))
        assert len(batches) == 4  # 8 samples a rank (23 padded to 24), in 4 batches on every rank
        seen += [index for batch in batches for _, index in batch]
    assert sorted(set(seen)) == list(range(23)) and len(seen) == 24


def test_aspect_ratio_sampler_needs_sizes_from_the_annotation():
    with pytest.raises(ConfigError, match=r"TensorDataset\.get_data_info\(index\) returning the image's 'width' and 'height'"):
        AspectRatioBatchSampler(keys_sampler(torch.utils.data.TensorDataset(torch.zeros(3))), batch_size=2)


def coco_without_readable_images(folder):
    """A COCO file of one landscape and two portrait images, whose image files are empty: sizes must come from the JSON."""
    folder.mkdir()
    sizes = [(40, 60), (60, 40), (50, 30)]  # (height, width)
    images = [{"id": i, "file_name": f"{i}.jpg", "height": h, "width": w} for i, (h, w) in enumerate(sizes)]
    annotations = [{"id": i + 1, "image_id": i, "category_id": 1 + i % 2, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0} for i in range(3)]
    for image in images:
        (folder / image["file_name"]).write_bytes(b"")
    categories = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    (folder / "ann.json").write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return folder / "ann.json"


def test_a_dataloader_config_groups_coco_images_by_orientation_from_the_annotation_alone(tmp_path):
    ann_file = coco_without_readable_images(tmp_path / "coco")
    cfg = dict(batch_size=2, dataset=dict(type="RepeatDataset", times=2, dataset=dict(type="CocoDetection", ann_file=str(ann_file))),
               batch_sampler=dict(type="AspectRatioBatchSampler"))
    loader = build_dataloader(cfg, seed=0, key="train_dataloader")
    batches = list(loader.batch_sampler)
    orientations = [{index % 3 in (1, 2) for _, index in batch} for batch in batches]  # images 1 and 2 are portrait
    assert len(loader) == len(batches) == 3
    assert sorted(map(sorted, orientations)) == [[False], [True], [True]]  # 2 landscape and 4 portrait copies
    assert loader.dataset.metainfo["classes"] == ("cat", "dog")
    assert loader.dataset.get_cat_ids(4) == [1]  # the second copy of image 1, whose category id 2 is label 1


FINAL_ITER = 24
WRAPPED = [
    "train_dataloader.dataset=dict(_delete_=True, type='RepeatDataset', times=2, dataset=dict(type='ClassBalancedDataset', "
    "oversample_thr=0.3, dataset=dict(type='ConcatDataset', datasets=[dict(type='ToyAnnotatedDataset', length=8), "
    "dict(type='ToyAnnotatedDataset', length=4)])))",
    "train_dataloader.batch_sampler=dict(type='AspectRatioBatchSampler')",
]


def test_a_killed_run_with_wrapped_datasets_and_grouped_batches_resumes_to_identical_weights(tmp_path):
    """15 images after balancing, 30 repeated, 8 batches an epoch: killed after 14, resumed mid-epoch from 12."""
    reference = train_cli(tmp_path / "reference", *WRAPPED)
    assert reference.returncode == 0, reference.stderr
    kill = f"custom_hooks=[dict(type='KillAtIterHook', iteration=14, marker='{tmp_path}/killed')]"
    first = train_cli(tmp_path / "resumed", kill, *WRAPPED)
    assert first.returncode == -9, first.stderr
    resumed = train_cli(tmp_path / "resumed", kill, "resume=auto", *WRAPPED)
    assert resumed.returncode == 0, resumed.stderr
    assert "iteration 12" in resumed.stdout
    weights = {name: read_checkpoint(tmp_path / name / f"iter_{FINAL_ITER}.pth")["state_dict"] for name in ("reference", "resumed")}
    assert_same_weights(weights["reference"], weights["resumed"], "killed at 14 and resumed")


def test_an_iteration_based_run_reshuffles_grouped_batches_every_epoch(tmp_path):
    cfg = tiny_cfg(tmp_path, "train_cfg=dict(_delete_=True, type='IterBasedTrainLoop', max_iters=5, val_interval=10)", "val_cfg=None", "val_dataloader=None",
                   "train_dataloader.dataset=dict(type='ToyAnnotatedDataset', length=8)",
                   "train_dataloader.batch_sampler=dict(type='AspectRatioBatchSampler')")
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.train_dataloader.batch_sampler.sampler.epoch == 2  # 2 batches an epoch: iteration 5 is in epoch 2


def test_resuming_mid_epoch_with_a_batch_sampler_loads_none_of_the_skipped_batches():
    class Counting(Annotated):
        def __getitem__(self, index):
            self.reads.append(index)
            return index

    dataset = Counting([[0]] * 12, portrait=[2, 5])
    dataset.reads = []
    loader = build_dataloader(dict(batch_size=3, dataset=dataset, batch_sampler=dict(type="AspectRatioBatchSampler")), seed=0, key="train_dataloader")
    whole = [batch.tolist() for batch in loader]
    dataset.reads.clear()
    rest = [batch.tolist() for batch in EpochBasedTrainLoop._batches_from(SimpleNamespace(dataloader=loader), 2)]
    assert rest == whole[2:] and sorted(dataset.reads) == sorted(sum(whole[2:], []))


@pytest.mark.parametrize("option, key", [
    ("train_dataloader.dataset=dict(_delete_=True, type='RepeatDataset', times=2, dataset=dict(type='ToyDatset'))",
     "train_dataloader.dataset.dataset"),
    ("train_dataloader.dataset=dict(_delete_=True, type='ConcatDataset', datasets=[dict(type='ToyDataset', "
     "pipeline=[dict(type='RandomFlip')])])", r"train_dataloader.dataset.datasets\[0\].pipeline\[0\]"),
    ("train_dataloader.batch_sampler=dict(type='AspectRatioSampler')", "train_dataloader.batch_sampler"),
], ids=["wrapped dataset", "pipeline of a concatenated dataset", "batch sampler"])
def test_the_config_check_looks_inside_wrapped_datasets_and_the_batch_sampler(tmp_path, option, key):
    with pytest.raises(ConfigError, match=f"unknown type .*config key '{key}'"):
        validate_config(tiny_cfg(tmp_path, option))
