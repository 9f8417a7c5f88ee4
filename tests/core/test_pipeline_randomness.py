"""Per-sample seeding is skipped where reading a sample draws no random numbers, and the log says so."""

from __future__ import annotations

import random

import numpy as np
import torch
from torchvision.transforms import v2

from trainyard.data import build_dataloader
from trainyard.pipeline_randomness import random_parts


class Listed(torch.utils.data.Dataset):
    """A dataset keeping its transforms in ``pipeline``, as trainyard's task datasets do."""

    def __init__(self, pipeline=None, length: int = 4) -> None:
        self.pipeline = pipeline
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        image = torch.full((3, 4, 4), float(index))
        return {"inputs": self.pipeline(image) if self.pipeline else image, "targets": index}


class Opaque(Listed):
    """A hand-written dataset that keeps no pipeline: it might flip a coin itself."""

    def __init__(self, length: int = 4) -> None:
        self.length = length


class Padding(v2.Transform):
    is_random = False

    def transform(self, inpt, params):
        return inpt


class Undeclared(v2.Transform):
    def transform(self, inpt, params):
        return inpt


class FlipCrop(v2.RandomCrop):
    """Subclasses of torchvision's random transforms are random without saying so."""


def test_torchvision_transforms_are_known_by_class():
    assert random_parts(Listed(v2.Compose([v2.Resize(8), v2.Normalize([0.5] * 3, [0.5] * 3)]))) == []
    assert random_parts(Listed(v2.Compose([v2.Resize(8), v2.RandomHorizontalFlip(), v2.ColorJitter(0.1)]))) == [
        "RandomHorizontalFlip", "ColorJitter"]
    assert random_parts(Listed(v2.Compose([v2.RandomApply([v2.Resize(8)])]))) == ["RandomApply"]


def test_transforms_declare_themselves_and_undeclared_ones_count_as_random():
    assert random_parts(Listed(v2.Compose([Padding()]))) == []
    assert random_parts(Listed(v2.Compose([FlipCrop(2)]))) == ["FlipCrop"]
    assert random_parts(Listed(v2.Compose([Undeclared()]))) == ["Undeclared (declares no is_random)"]


def test_a_dataset_without_a_pipeline_to_inspect_is_seeded_unless_it_declares_itself():
    assert random_parts(Listed(None)) == []
    assert random_parts(Opaque()) is None
    declared = type("Declared", (Opaque,), {"is_random": False})
    assert random_parts(declared()) == []
    assert random_parts(torch.utils.data.ConcatDataset([Listed(None), Listed(v2.RandomHorizontalFlip())])) == ["RandomHorizontalFlip"]
    assert random_parts(torch.utils.data.Subset(Opaque(), [0])) is None


def test_reading_a_deterministic_pipeline_leaves_the_global_generators_alone():
    loader = build_dataloader(dict(batch_size=2, dataset=Listed(v2.Compose([v2.Resize(4)]))), seed=0, key="train_dataloader")
    assert not loader.dataset.seeded
    assert loader.dataset.seeding_note == "train_dataloader: per-sample seeding skipped, the pipeline of Listed has no random transform"
    np.random.seed(7)
    random.seed(7)
    before = (np.random.random(), random.random())
    np.random.seed(7)
    random.seed(7)
    list(loader)
    assert (np.random.random(), random.random()) == before


def test_a_random_pipeline_is_still_seeded_per_sample():
    loader = build_dataloader(dict(batch_size=2, dataset=Listed(v2.RandomHorizontalFlip())), seed=0, key="train_dataloader")
    assert loader.dataset.seeded
    assert loader.dataset.seeding_note == "train_dataloader: per-sample seeding on, for RandomHorizontalFlip"
    opaque = build_dataloader(dict(batch_size=2, dataset=Opaque()), seed=0, key="val_dataloader")
    assert opaque.dataset.seeded and "is_random = False" in opaque.dataset.seeding_note


def test_the_run_log_says_whether_samples_are_seeded(tmp_path):
    from conftest import tiny_cfg
    from trainyard.runner import Runner

    cfg = tiny_cfg(tmp_path, "train_cfg.max_epochs=1", "default_hooks.checkpoint=None")
    cfg.val_dataloader = dict(batch_size=4, dataset=Listed(v2.Compose([v2.Resize(4)])))
    Runner.from_cfg(cfg).train()
    log = next(tmp_path.glob("*/*.log")).read_text()
    assert "train_dataloader: per-sample seeding on, as ToyDataset keeps no pipeline to inspect" in log
    assert "val_dataloader: per-sample seeding skipped, the pipeline of Listed has no random transform" in log
