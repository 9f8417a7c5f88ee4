# ResNet-18 on your own images. Put them in
#   <data_root>/train/<class name>/*.jpg   and   <data_root>/val/<class name>/*.jpg
# and set data_root below: the number of classes and their names come from the folders.
# To fine-tune from local weights (a torchvision resnet18 state dict, or a trainyard
# checkpoint), set model.checkpoint; a head for another class count is re-initialised.
#   python tools/train.py configs/cls/resnet18_imagefolder.py
_base_ = [
    '../_base_/models/resnet18.py',
    '../_base_/datasets/imagefolder.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/my_images'
image_size = 128  # 224 for photos with fine detail, or for weights trained at 224
train_pipeline = [
    dict(type='RandomResizedCrop', size=image_size, scale=(0.5, 1.0), antialias=True),
    dict(type='RandomHorizontalFlip', p=0.5),
]
test_pipeline = [
    dict(type='Resize', size=int(image_size * 256 / 224), antialias=True),
    dict(type='CenterCrop', size=image_size),
]
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.001, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=True, begin=1, end=10, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='ClsVisualizationHook')]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=1, max_keep_ckpts=2, save_best='accuracy_top1'))
