# The default job: a small U-Net on the generated shapes dataset, on the CPU in a few
# minutes, reaching mIoU >= 0.80 on its validation split.
#   python tools/train.py configs/seg/unet.py
#   tools/dist_train.sh configs/seg/unet.py 2
_base_ = [
    '../_base_/models/unet.py',
    '../_base_/datasets/shapes.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1k.py',
]
custom_hooks = [dict(type='SegVisualizationHook', interval=10)]
randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=500, max_keep_ckpts=2, save_best='mIoU'),
)
