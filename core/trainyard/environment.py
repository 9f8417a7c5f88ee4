"""The process a run lives in: device, seeds and determinism."""

from __future__ import annotations

import multiprocessing
import os
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from trainyard import dist
from trainyard.errors import ConfigError

__all__ = ["select_device", "set_random_seed", "setup_randomness", "randomness_to_resume", "setup_backends", "setup_multiprocessing"]


def select_device(requested: str | None = None) -> torch.device:
    """``env_cfg.device``: ``'cpu'``, ``'cuda'``, or ``None``/``'auto'`` for this rank's CUDA device when there is one."""
    if requested not in (None, "auto", "cpu", "cuda"):
        raise ConfigError(f"env_cfg.device must be 'auto', 'cpu' or 'cuda', got {requested!r}")
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("env_cfg.device='cuda', but this machine has no usable CUDA device; use device='cpu' (or 'auto')")
    if torch.cuda.is_available():
        return torch.device("cuda", dist.get_local_rank() % torch.cuda.device_count())
    return torch.device("cpu")


def set_random_seed(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup_randomness(cfg: Mapping[str, Any] | None) -> int:
    """Apply ``randomness = dict(seed=None, deterministic=False, diff_rank_seed=False)``; returns the seed.

    Without a seed one is drawn on rank 0 and shared, so every rank initialises the
    model identically; the seed is logged and saved so the run can be repeated.
    """
    options = dict(cfg or {})
    seed = options.pop("seed", None)
    deterministic = options.pop("deterministic", False)
    diff_rank_seed = options.pop("diff_rank_seed", False)
    if options:
        raise ConfigError(f"randomness has unknown keys {sorted(options)}; use seed, deterministic, diff_rank_seed")
    if seed is None:
        seed = dist.broadcast_object(random.SystemRandom().randrange(2**31))
    seed = int(seed)
    set_random_seed(seed + dist.get_rank() if diff_rank_seed else seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    return seed


def randomness_to_resume(cfg: Mapping[str, Any] | None, saved_seed: Any) -> tuple[dict[str, Any], str | None]:
    """``randomness`` for a run that resumes one saved with ``saved_seed``, and a warning when the config disagrees.

    The sampler's order and every per-sample augmentation derive from the seed, so a
    resumed run must keep the one its first attempt used (drawn, when the config left
    it unset); a different explicit seed in the config is overridden, with a warning.
    """
    options = dict(cfg or {})
    if saved_seed is None:
        return options, None
    saved_seed = int(saved_seed)
    asked = options.get("seed")
    warning = None
    if asked is not None and int(asked) != saved_seed:
        warning = (f"randomness.seed={asked} differs from seed {saved_seed} of the run being resumed; continuing with "
                   f"{saved_seed}, so the result matches an uninterrupted run. To train with seed {asked}, start a new run "
                   "(--load-from the checkpoint for its weights)")
    options["seed"] = saved_seed
    return options, warning


def setup_backends(env_cfg: Mapping[str, Any]) -> None:
    """``env_cfg.cudnn_benchmark``, thread counts and ``mp_cfg``."""
    if env_cfg.get("cudnn_benchmark") is not None:
        torch.backends.cudnn.benchmark = bool(env_cfg["cudnn_benchmark"])
    if env_cfg.get("num_threads"):
        torch.set_num_threads(int(env_cfg["num_threads"]))
    setup_multiprocessing(env_cfg.get("mp_cfg"))


def setup_multiprocessing(mp_cfg: Mapping[str, Any] | None) -> None:
    """``env_cfg.mp_cfg`` of OpenMMLab configs, applied as MMEngine does.

    ``mp_start_method`` becomes the process-wide start method, which data workers use;
    ``opencv_num_threads`` limits OpenCV's own threads (0: none, so workers do not
    oversubscribe the CPUs) where OpenCV is installed, and means nothing without it.
    """
    options = dict(mp_cfg or {})
    method = options.pop("mp_start_method", None)
    opencv_threads = options.pop("opencv_num_threads", None)
    if options:
        raise ConfigError(f"env_cfg.mp_cfg has unknown keys {sorted(options)}; it takes mp_start_method, opencv_num_threads")
    if method is not None:
        available = multiprocessing.get_all_start_methods()
        if method not in available:
            raise ConfigError(f"env_cfg.mp_cfg.mp_start_method={method!r} is not available here; use one of {', '.join(available)}")
        if multiprocessing.get_start_method(allow_none=True) != method:
            multiprocessing.set_start_method(method, force=True)
    if opencv_threads is not None:
        try:
            import cv2
        except ImportError:
            return
        cv2.setNumThreads(int(opencv_threads))
