# Runtime defaults every experiment inherits: hooks, environment, logging.
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=True, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    nan_guard=dict(type='NaNGuardHook', interval=50),  # a NaN loss stops the run; never saved
    model_summary=dict(type='ModelSummaryHook'),  # parameters and multiply-adds in the log; None skips it
    progress_bar=dict(type='ProgressBarHook'),  # a bar on a terminal; log lines alone in files and pipes
)
custom_hooks = []

env_cfg = dict(
    cudnn_benchmark=False,
    dist_cfg=dict(backend=None),  # None: nccl with CUDA, gloo without
    timeout=1800,  # seconds a collective may wait before the job fails
)
randomness = dict(seed=None, deterministic=False)

log_level = 'INFO'
# load_from is left unset: a child config may set it to a path or to dict(path=..., revise_keys=..., strict=...),
# which a None here would refuse to merge with.
resume = False
