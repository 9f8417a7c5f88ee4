# U-Net on Pascal VOC 2012: set data_root to the folder holding VOCdevkit/.
_base_ = [
    '../_base_/models/unet.py',
    '../_base_/datasets/voc12.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_20k.py',
]
model = dict(num_classes=21, base_channels=32, depth=4)
custom_hooks = [dict(type='SegVisualizationHook', interval=100)]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=2000, max_keep_ckpts=2, save_best='mIoU'),
)
