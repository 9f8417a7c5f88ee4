# A small CNN on Fashion-MNIST (28x28, ten kinds of clothing): about 90% top-1 after
# 10 epochs, minutes on a CPU. Set data_root to the folder with the original IDX files.
_base_ = [
    '../_base_/models/small_cnn.py',
    '../_base_/datasets/fashion_mnist.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/fashion_mnist'
model = dict(label_smoothing=0.1, data_preprocessor=dict(mean=[72.94, 72.94, 72.94], std=[90.02, 90.02, 90.02]))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.003, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=True, begin=1, end=10, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2, save_best='accuracy_top1'))
