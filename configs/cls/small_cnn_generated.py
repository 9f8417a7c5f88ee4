# The quick classification job: a small CNN on generated shape images (six classes),
# on the CPU in under a minute, no files and no downloads.
#   python tools/train.py configs/cls/small_cnn_generated.py
_base_ = [
    '../_base_/models/small_cnn.py',
    '../_base_/datasets/generated_cls.py',
    '../_base_/default_runtime.py',
]
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.003, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=False, begin=20, end=375),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='ClsVisualizationHook')]
randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=1, max_keep_ckpts=2, save_best='accuracy_top1'),
)
