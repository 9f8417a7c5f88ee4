# SSDlite320 MobileNetV3-Large on COCO 2017: torchvision's recipe trains 600 epochs with
# strong augmentation (IoU crops, zoom-out), 256 images a batch, cosine decay.
_base_ = [
    '../_base_/models/ssdlite_mobilenetv3.py',
    '../_base_/datasets/coco.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/coco'
train_pipeline = [
    dict(type='RandomIoUCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='SanitizeBoundingBoxes'),
]
train_dataloader = dict(
    batch_size=32,
    dataset=dict(ann_file=data_root + '/annotations/instances_train2017.json', data_prefix=data_root + '/train2017', pipeline=train_pipeline),
)
val_dataloader = dict(dataset=dict(ann_file=data_root + '/annotations/instances_val2017.json', data_prefix=data_root + '/val2017'))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.15, momentum=0.9, weight_decay=0.00004))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=600),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=600, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3, save_best='bbox_mAP'))
