"""AMP helpers live below both the training loop and prediction; page-locked stacking for CUDA copies."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from trainyard.amp import autocast_context, default_amp_dtype
from trainyard.transfer import stack_for_device


def test_autocast_context_is_one_function_importable_from_its_old_place():
    from trainyard.inference import autocast_context as old_name

    assert old_name is autocast_context
    with autocast_context(torch.device("cpu"), True):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with autocast_context(torch.device("cpu"), False):
        assert not torch.is_autocast_enabled("cpu")
    assert default_amp_dtype(torch.device("cuda")) == torch.float16


def test_the_training_loop_does_not_import_the_prediction_module():
    code = "import sys, trainyard.loops; print('trainyard.inference' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_stacking_for_the_cpu_is_a_plain_stack():
    images = [torch.full((3, 2, 2), i, dtype=torch.uint8) for i in range(3)]
    stacked = stack_for_device(images, torch.device("cpu"))
    assert torch.equal(stacked, torch.stack(images)) and not stacked.is_pinned()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="page-locked memory needs CUDA")
def test_stacking_for_cuda_is_page_locked():
    images = [torch.full((3, 2, 2), i, dtype=torch.uint8) for i in range(3)]
    stacked = stack_for_device(images, torch.device("cuda"))
    assert stacked.is_pinned() and torch.equal(stacked, torch.stack(images))
