# A small Faster R-CNN trained from scratch on generated shapes: reaches bbox mAP@0.5
# above 0.5 on a 2-core CPU in a few minutes, no files and no downloads.
#   python tools/train.py configs/det/faster_rcnn_small_generated.py
_base_ = [
    '../_base_/datasets/generated_det.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='FasterRCNN',
    backbone=dict(type='SmallDetBackbone', channels=(32, 64, 128, 64), stride=8),
    num_classes='auto',
    min_size=128,
    max_size=128,
    anchor_sizes=((16, 32, 64),),
    aspect_ratios=((0.5, 1.0, 2.0),),
    rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300,
    rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100,
    box_batch_size_per_image=64,
    representation_size=256,
)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.001, weight_decay=0.0001), clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=False, begin=100, end=1000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='DetVisualizationHook', interval=10)]
randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=500, max_keep_ckpts=2, save_best='bbox_mAP_50'),
)
