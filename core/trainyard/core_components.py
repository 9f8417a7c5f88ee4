"""The core's own components, registered lazily: nothing here is imported until used.

This is the one list of what trainyard itself provides to configs; plugins add
theirs through :mod:`trainyard.hookspecs`.
"""

from __future__ import annotations

from trainyard.registry import CORE, COLLATE_FUNCTIONS, DATA_SAMPLERS, DATASETS, HOOKS, LOOPS, SCHEDULERS, Registry

_CORE_COMPONENTS: dict[Registry, dict[str, str]] = {
    HOOKS: {
        "IterTimerHook": "trainyard.hooks.iter_timer:IterTimerHook",
        "LoggerHook": "trainyard.hooks.logger:LoggerHook",
        "ParamSchedulerHook": "trainyard.hooks.param_scheduler:ParamSchedulerHook",
        "CheckpointHook": "trainyard.hooks.checkpoint:CheckpointHook",
        "DistSamplerSeedHook": "trainyard.hooks.sampler_seed:DistSamplerSeedHook",
        "EMAHook": "trainyard.hooks.ema:EMAHook",
        "EarlyStoppingHook": "trainyard.hooks.early_stopping:EarlyStoppingHook",
        "NaNGuardHook": "trainyard.hooks.nan_guard:NaNGuardHook",
        "MLflowLoggerHook": "trainyard.hooks.mlflow:MLflowLoggerHook",
        "WandbLoggerHook": "trainyard.hooks.wandb:WandbLoggerHook",
        "ModelSummaryHook": "trainyard.hooks.model_summary:ModelSummaryHook",
        "ProfilerHook": "trainyard.hooks.profiler:ProfilerHook",
        "ProgressBarHook": "trainyard.hooks.progress_bar:ProgressBarHook",
        "ResultFilesHook": "trainyard.hooks.result_files:ResultFilesHook",
        "VerifyResumeHook": "trainyard.resume_check:VerifyResumeHook",
    },
    LOOPS: {
        name: f"trainyard.loops:{name}"
        for name in ("EpochBasedTrainLoop", "IterBasedTrainLoop", "ValLoop", "TestLoop")
    },
    SCHEDULERS: {
        f"{kind}{param}": f"trainyard.schedulers:{kind}{param}"
        for kind in ("Linear", "Constant", "CosineAnnealing", "Poly", "MultiStep", "Step", "Exponential")
        for param in ("LR", "Momentum")
    },
    DATASETS: {
        name: f"trainyard.dataset_wrappers:{name}" for name in ("ConcatDataset", "RepeatDataset", "ClassBalancedDataset")
    },
    DATA_SAMPLERS: {
        "DefaultSampler": "trainyard.samplers:DefaultSampler",
        "AspectRatioBatchSampler": "trainyard.samplers:AspectRatioBatchSampler",
    },
    COLLATE_FUNCTIONS: {
        "default_collate": "trainyard.data:default_collate",
        "pseudo_collate": "trainyard.data:pseudo_collate",
    },
}

for _registry, _components in _CORE_COMPONENTS.items():
    for _name, _path in _components.items():
        _registry.register_lazy(_name, _path, origin=CORE)
