"""Model summary: parameters and multiply-adds, logged at the start of training and printed by ``trainyard summary``."""

import random
import re

import numpy as np
import pytest
import torch
from conftest import REPO, tiny_cfg
from torch import nn

from trainyard.cli import main
from trainyard.hooks import Hook
from trainyard.model_summary import format_count, summarize_model
from trainyard.runner import Runner


class _ConvAndHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 2)
        self.head.requires_grad_(False)

    def forward(self, batch, mode="loss"):
        return self.head(self.conv(batch["inputs"]).mean(dim=(2, 3)))


def test_counts_parameters_trainable_ones_and_the_multiply_adds_of_each_module():
    model = _ConvAndHead().train()
    summary = summarize_model(model, {"inputs": torch.zeros(1, 3, 8, 8)})
    assert (summary.parameters, summary.trainable) == (224 + 18, 224)
    conv, head = summary.modules
    assert (conv.name, conv.parameters, conv.macs) == ("conv", 224, 8 * 8 * 8 * 3 * 9)  # one MAC per output pixel and weight
    assert (head.name, head.parameters, head.trainable, head.macs) == ("head", 18, 0, 16)
    assert summary.macs == conv.macs + head.macs and summary.input_shapes == [(3, 8, 8)]
    assert model.training and model.conv.training, "the counting pass leaves the model in the mode it found"


class _Stages(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList([nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1)])

    def forward(self, batch, mode="loss"):
        x = batch["inputs"]
        for stage in self.stages:  # the list itself is never called
            x = stage(x)
        return x


def test_a_module_list_counts_the_multiply_adds_of_its_members():
    summary = summarize_model(_Stages(), {"inputs": torch.zeros(1, 3, 2, 2)})
    assert [(m.name, m.macs) for m in summary.modules] == [("stages", 4 * (3 * 4 + 4 * 4))] and summary.macs == 112


def test_counts_are_written_with_decimal_prefixes():
    assert [format_count(n) for n in (999, 25_557_032, 4_089_184_256)] == ["999", "25.56 M", "4.09 G"]


def test_summary_of_torchvision_resnet50_matches_its_documented_size(capsys):
    """torchvision documents ResNet-50 as 25.56 M parameters and 4.09 GFLOPS (multiply-adds) at 224x224."""
    config = str(REPO / "configs/migrated/resnet50_8xb32_in1k.py")  # image_size = 224; no data here, no weights fetched
    assert main(["summary", config, "--cfg-options", "model.num_classes=1000"]) == 0
    out = capsys.readouterr().out
    assert "25.56 M parameters (25.56 M trainable)" in out
    macs = float(re.search(r"([\d.]+) G multiply-adds \(MACs\) for one input of 3x224x224", out).group(1))
    assert abs(macs - 4.09) / 4.09 < 0.02
    assert "the config's image size" in out


def test_summary_counts_at_the_input_size_given(capsys):
    assert main(["summary", str(REPO / "tests/configs/tiny.py"), "--input-size", "16", "24"]) == 0
    out = capsys.readouterr().out
    assert "for one input of 3x16x24" in out and "127 parameters" in out


def test_summary_without_data_or_a_size_says_how_to_count_in_one_line(tmp_path, capsys):
    config = tmp_path / "no_data.py"
    config.write_text(f"_base_ = [{str(REPO / 'tests/configs/tiny.py')!r}]\n"
                      "train_dataloader = dict(dataset=dict(type='ImageFolder', data_root='/nowhere/at/all', _delete_=True))\n")
    assert main(["summary", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "/nowhere/at/all" in err and "--input-size HEIGHT WIDTH" in err


def _generator_states():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


class _RecordGenerators(Hook):
    def __init__(self, priority):
        self.priority = priority
        self.states = None

    def before_train(self, runner):
        self.states = _generator_states()


def _run_log(runner) -> str:
    return (runner.run_dir / f"{runner.run_dir.name}.log").read_text()


def test_the_summary_is_logged_before_training_and_leaves_every_random_generator_as_it_was(tmp_path):
    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1", "val_cfg=None", "val_dataloader=None",
                                      "default_hooks.checkpoint=None"))
    before, after = _RecordGenerators("HIGHEST"), _RecordGenerators("LOWEST")
    runner.register_hook(before)
    runner.register_hook(after)
    runner.train()
    assert "model ToyNet: 127 parameters (127 trainable), 6.92 k multiply-adds (MACs) for one input of 3x8x8" in _run_log(runner)
    torch_state, numpy_state, python_state = before.states
    assert torch.equal(after.states[0], torch_state)
    assert np.array_equal(after.states[1], numpy_state) and after.states[2] == python_state


@pytest.mark.parametrize("option, logged", [("default_hooks.model_summary=None", False),
                                            ("default_hooks.model_summary.count_macs=False", True)])
def test_the_summary_can_be_switched_off_or_kept_to_parameters(tmp_path, option, logged):
    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1", "val_cfg=None", "val_dataloader=None",
                                      "default_hooks.checkpoint=None", option))
    runner.train()
    log = _run_log(runner)
    assert ("model ToyNet: 127 parameters" in log) == logged and "multiply-adds" not in log
