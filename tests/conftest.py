"""Shared helpers: running the ``trainyard`` command in a fresh process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
TINY_CONFIG = TESTS / "configs" / "tiny.py"


def tiny_cfg(work_dir: Path, *overrides: str, **values: Any):
    """The tiny config with ``work_dir`` set, ``--cfg-options`` style overrides and plain values."""
    from trainyard.config import load_config

    cfg = load_config(TINY_CONFIG, list(overrides))
    cfg.work_dir = str(work_dir)
    for key, value in values.items():
        cfg[key] = value
    return cfg


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def trainyard_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: tests/ importable, no colour, unbuffered output."""
    pythonpath = os.pathsep.join(filter(None, [str(TESTS), (env or {}).get("PYTHONPATH"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", **(env or {}), "PYTHONPATH": pythonpath}


def run_command(command: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """A command from the repository root, as a user would type it."""
    return subprocess.run(command, capture_output=True, text=True, env=trainyard_env(env), cwd=REPO, timeout=timeout)


def run_trainyard(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m trainyard ARGS`` in a new process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "trainyard", *args],
        capture_output=True,
        text=True,
        env=trainyard_env(env),
        cwd=cwd or REPO,
        timeout=timeout,
    )


@pytest.fixture
def trainyard_log(caplog):
    """What the ``trainyard`` logger says during the test (``.text``), also after a Runner set it up.

    The Runner's logger does not propagate to the root logger, where ``caplog`` listens.
    """
    import logging

    logger = logging.getLogger("trainyard")
    level = logger.level
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(level)


def place_in_torch_hub_cache(torch_home: Path, url: str, state: Any) -> Path:
    """Save ``state`` where torch.hub keeps the download of ``url`` (``TORCH_HOME/hub/checkpoints/<its file name>``): tests never download."""
    import torch

    path = torch_home / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@pytest.fixture(scope="session")
def installed_plugins(tmp_path_factory) -> Path:
    """The example and broken plugin packages, installed for real into one directory."""
    target = tmp_path_factory.mktemp("site")
    for package in ("example_plugin", "broken_plugins"):
        build_dir = tmp_path_factory.mktemp(f"build-{package}")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
             "--target", str(target), str(FIXTURES / package)],
            check=True,
            cwd=build_dir,
            env={**os.environ, "PIP_NO_INPUT": "1"},
        )
    return target


# exact resume: one uninterrupted reference run, shared by the kill, signal and resume tests

RESUME_OPTIONS = [
    "model.dropout=0.3",
    "train_cfg.max_epochs=3",
    "default_hooks.checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False)",
    "default_hooks.logger.interval=1",
    "param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10)]",
    "val_cfg=None",
    "val_dataloader=None",
]


def train_cli(work_dir, *extra):
    return run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(work_dir), "--cfg-options", *RESUME_OPTIONS, *extra)


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("uninterrupted")
    result = train_cli(work_dir)
    assert result.returncode == 0, result.stderr
    return work_dir


def final_weights(work_dir):
    from trainyard.checkpoint import read_checkpoint

    return read_checkpoint(work_dir / "iter_18.pth")["state_dict"]


def assert_same_weights(a, b, message: str = ""):
    """Every tensor equal; a failure names the key, the largest difference and ``message`` (what produced ``b``)."""
    import torch

    context = f" ({message})" if message else ""
    assert a.keys() == b.keys(), f"different keys: {sorted(a.keys() ^ b.keys())}{context}"
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key}: {_difference(a[key], b[key])}{context}"


def _difference(a, b) -> str:
    if a.shape != b.shape:
        return f"shapes {tuple(a.shape)} and {tuple(b.shape)}"
    return f"max abs difference {(a.double() - b.double()).abs().max().item():.3g}"




# inference and export: one tiny trained run per task's quick config, shared by their tests

QUICK_RUNS = {
    "seg": ("configs/seg/unet.py", [
        "model.base_channels=8", "train_cfg.max_iters=8", "train_cfg.val_interval=8",
        "train_dataloader.dataset.length=32", "val_dataloader.dataset.length=8", "test_dataloader.dataset.length=8",
        "default_hooks.checkpoint.interval=8",
    ]),
    "cls": ("configs/cls/small_cnn_generated.py", [
        "train_cfg.max_epochs=1", "train_dataloader.dataset.length=64", "val_dataloader.dataset.length=16",
        "test_dataloader.dataset.length=16", "param_scheduler=[]",
    ]),
    "det": ("configs/det/faster_rcnn_small_generated.py", [
        "train_cfg.max_iters=4", "train_cfg.val_interval=4", "train_dataloader.dataset.length=16",
        "train_dataloader.batch_size=4", "val_dataloader.dataset.length=4", "test_dataloader.dataset.length=4",
        "default_hooks.checkpoint.interval=4",
    ]),
}
_IN_PROCESS = ["train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False", "custom_hooks=[]"]


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """``quick_run(task)``: the work dir of a few iterations of that task's quick config, trained once per session."""
    from trainyard.config import load_config
    from trainyard.runner import Runner

    runs: dict[str, Path] = {}

    def train(task: str) -> Path:
        if task not in runs:
            config, options = QUICK_RUNS[task]
            cfg = load_config(REPO / config, [*options, *_IN_PROCESS])
            cfg.work_dir = str(tmp_path_factory.mktemp(f"quick-{task}"))
            Runner.from_cfg(cfg).train()
            runs[task] = Path(cfg.work_dir)
        return runs[task]

    return train


def write_images(folder: Path) -> dict[str, tuple[int, int]]:
    """A grey, an RGBA and two RGB images of different sizes; returns ``{file name: (height, width)}``."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = {
        "grey.png": Image.fromarray(rng.integers(0, 255, (40, 56), dtype=np.uint8), "L"),
        "rgba.png": Image.fromarray(rng.integers(0, 255, (48, 48, 4), dtype=np.uint8), "RGBA"),
        "small.jpg": Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)),
        "large.png": Image.fromarray(rng.integers(0, 255, (160, 224, 3), dtype=np.uint8)),
    }
    for name, image in images.items():
        image.save(folder / name)
    return {name: (image.height, image.width) for name, image in images.items()}


# plugin authors: generated plugin projects, installed for real

def pip_install_target(target: Path, *sources: Path) -> None:
    """``pip install --no-deps --no-build-isolation --target``, as a plugin's CI would install it."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target),
         *map(str, sources)],
        check=True, capture_output=True, env={**os.environ, "PIP_NO_INPUT": "1"},
    )


def new_plugin(name: str, task: str, parent: Path) -> Path:
    """``trainyard new-plugin NAME --task TASK`` run in ``parent``; returns the project folder."""
    result = run_trainyard("new-plugin", name, "--task", task, cwd=parent)
    assert result.returncode == 0, result.stderr
    return parent / name


@pytest.fixture(scope="session")
def installed_wheels(tmp_path_factory) -> Path:
    """trainyard itself built as a wheel, and a generated plugin, installed into one folder (not the source tree)."""
    projects = tmp_path_factory.mktemp("projects")
    target = tmp_path_factory.mktemp("wheel-site")
    pip_install_target(target, REPO, new_plugin("acme-tabular", "blank", projects))
    return target
