"""The OpenMMLab runtime keys trainyard has no key of its own for, and what becomes of each.

OpenMMLab configs load unchanged, so they arrive with keys MMEngine's Runner reads
(``default_scope``, ``visualizer``, ``log_processor``, ``env_cfg.mp_cfg``, ...). None
of them is dropped in silence: each is either honoured (mapped onto trainyard's
equivalent) or named in one warning that says what replaces it. :data:`OPENMMLAB_KEYS`
is that table, the one place it is written (``docs/config.md`` shows it);
:func:`config_warnings` gives the warning lines for a config, which ``trainyard
config`` prints and a training run logs once.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["KeyTreatment", "OPENMMLAB_KEYS", "ENV_CFG_KEYS", "DDP_TYPES", "config_warnings", "ddp_arguments"]


@dataclass(frozen=True)
class KeyTreatment:
    """What trainyard does with one OpenMMLab key (dotted, as ``env_cfg.mp_cfg``)."""

    key: str
    honoured: bool
    treatment: str
    """Honoured: how trainyard applies it. Otherwise: what replaces it (the warning says so)."""


OPENMMLAB_KEYS: tuple[KeyTreatment, ...] = (
    KeyTreatment("auto_scale_lr", True,
                 "with enable=True (or trainyard train --auto-scale-lr) the lr is scaled by the total batch "
                 "(batch_size x processes x accumulative_counts) over base_batch_size, and logged"),
    KeyTreatment("env_cfg.mp_cfg", True,
                 "mp_start_method sets how data worker processes start; opencv_num_threads sets OpenCV's threads "
                 "where OpenCV is installed"),
    KeyTreatment("custom_imports.allow_failed_imports", True,
                 "True: a module that cannot be imported is skipped, with a warning naming it"),
    KeyTreatment("launcher", True,
                 "'none', 'pytorch' (torchrun) and 'slurm' (srun); 'mpi' is an error: start the job with torchrun or srun"),
    KeyTreatment("model_wrapper_cfg.type", True,
                 "'MMDistributedDataParallel' (MMEngine's default) is torch's DistributedDataParallel, which wraps the "
                 "model when world size > 1; 'FSDP' shards it with FSDP2 (docs/distributed.md); another type is warned "
                 "about. The other keys go to DDP when it takes them "
                 "(find_unused_parameters, broadcast_buffers, ...), with trainyard's sync_bn; the rest are warned about"),
    KeyTreatment("default_scope", False,
                 "registries need no scope (a plugin's names are global; a name two plugins share is '<plugin>.<Name>'), "
                 "and _base_ names shipped configs as 'package::path'"),
    KeyTreatment("visualizer", False,
                 "pictures come from the task plugins' visualization hooks in custom_hooks (ClsVisualizationHook, "
                 "DetVisualizationHook, SegVisualizationHook) into the run's vis/ folder and TensorBoard"),
    KeyTreatment("vis_backends", False,
                 "every run writes scalars.jsonl and TensorBoard events (RunWriter); for MLflow add MLflowLoggerHook "
                 "to custom_hooks"),
    KeyTreatment("log_processor", False,
                 "console lines average each value over the logging interval (default_hooks.logger.interval) and "
                 "count epochs or iterations as train_cfg's loop does"),
    KeyTreatment("tta_model", True,
                 "with --tta (trainyard test, val, predict) the model is evaluated inside it, as MMEngine's tools/test.py "
                 "--tta does; its views come from its scales and flip, not from a tta_pipeline"),
    KeyTreatment("experiment_name", False, "a run is named by its folder, work_dir/<timestamp>"),
    KeyTreatment("sync_bn", False, "set model_wrapper_cfg.sync_bn=True"),
    KeyTreatment("find_unused_parameters", False, "set model_wrapper_cfg.find_unused_parameters=True"),
    KeyTreatment("env_cfg.resource_limit", False, "raise the open-file limit with 'ulimit -n' before starting"),
    KeyTreatment("model_wrapper_cfg.detect_anomalous_params", False,
                 "run with TORCH_DISTRIBUTED_DEBUG=DETAIL, with which DDP names the parameters that got no gradient"),
)

ENV_CFG_KEYS = frozenset({"cudnn_benchmark", "device", "dist_cfg", "mp_cfg", "num_threads", "timeout"})
"""The ``env_cfg`` keys trainyard reads; ``dist_cfg`` is read for its ``backend`` only."""

DDP_TYPES = frozenset({"DDP", "MMDistributedDataParallel", "DistributedDataParallel"})
"""``model_wrapper_cfg.type`` values that mean torch's ``DistributedDataParallel``."""


def config_warnings(cfg: Any) -> list[str]:
    """One line for each key of ``cfg`` (a dict or an mmengine ``Config``) that trainyard does not read, naming what replaces it."""
    cfg = cfg if isinstance(cfg, Mapping) else cfg.to_dict()
    lines = [f"{item.key} is not used by trainyard: {item.treatment}"
             for item in OPENMMLAB_KEYS if not item.honoured and _has(cfg, item.key)]
    lines += _env_cfg_warnings(cfg.get("env_cfg"))
    lines += _model_wrapper_warnings(cfg.get("model_wrapper_cfg"))
    lines += _custom_imports_warnings(cfg.get("custom_imports"))
    model = cfg.get("model")
    if cfg.get("data_preprocessor") is not None and isinstance(model, Mapping) and model.get("data_preprocessor") is None:
        lines.append("data_preprocessor is not used by trainyard: MMEngine merges a top-level data_preprocessor into "
                     "the model, trainyard reads only model.data_preprocessor")
    return lines


def ddp_arguments(model_wrapper_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``model_wrapper_cfg`` options the Runner applies: ``sync_bn`` and what DDP takes (the rest is warned about)."""
    accepted = ddp_parameters() | {"sync_bn"}
    return {key: value for key, value in dict(model_wrapper_cfg or {}).items() if key in accepted}


def ddp_parameters() -> set[str]:
    """The keyword arguments this torch's DistributedDataParallel takes (besides the module and device_ids)."""
    from torch.nn.parallel import DistributedDataParallel

    return set(inspect.signature(DistributedDataParallel.__init__).parameters) - {"self", "module", "device_ids"}


def _has(cfg: Mapping[str, Any], dotted: str) -> bool:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _tabled(key: str) -> bool:
    return any(item.key == key for item in OPENMMLAB_KEYS)


def _env_cfg_warnings(env_cfg: Any) -> list[str]:
    if not isinstance(env_cfg, Mapping):
        return []
    lines = [f"env_cfg.{key} is not used by trainyard: env_cfg takes {', '.join(sorted(ENV_CFG_KEYS))}"
             for key in env_cfg if key not in ENV_CFG_KEYS and not _tabled(f"env_cfg.{key}")]
    dist_cfg = env_cfg.get("dist_cfg")
    if isinstance(dist_cfg, Mapping):
        lines += [f"env_cfg.dist_cfg.{key} is not used by trainyard: dist_cfg takes backend (the collective timeout is env_cfg.timeout)"
                  for key in dist_cfg if key != "backend"]
    return lines


def _model_wrapper_warnings(wrapper_cfg: Any) -> list[str]:
    if not isinstance(wrapper_cfg, Mapping) or not wrapper_cfg:
        return []
    lines = []
    wrapper_type = wrapper_cfg.get("type")
    if wrapper_type in ("FSDP", "FSDP2"):
        return []  # its keys are checked, with errors, by trainyard.strategies
    if wrapper_type is not None and wrapper_type not in DDP_TYPES:
        lines.append(f"model_wrapper_cfg.type={wrapper_type!r} is not available in trainyard: with world size > 1 the model "
                     "is wrapped in torch's DistributedDataParallel")
    applied = set(ddp_arguments(wrapper_cfg)) | {"type"}
    lines += [f"model_wrapper_cfg.{key} is not used by trainyard: DistributedDataParallel does not take it (trainyard adds sync_bn)"
              for key in wrapper_cfg if key not in applied and not _tabled(f"model_wrapper_cfg.{key}")]
    return lines


def _custom_imports_warnings(custom: Any) -> list[str]:
    if not isinstance(custom, Mapping):
        return []
    lines = [f"custom_imports.{key} is not used by trainyard: custom_imports takes imports and allow_failed_imports"
             for key in custom if key not in ("imports", "allow_failed_imports")]
    if custom.get("allow_failed_imports"):
        modules = custom.get("imports") or []
        for module in [modules] if isinstance(modules, str) else modules:
            if module not in sys.modules:
                reason = "cannot be found on sys.path" if _not_found(module) else "failed to import"
                lines.append(f"custom_imports: module '{module}' {reason} and is skipped (allow_failed_imports=True)")
    return lines


def _not_found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True
