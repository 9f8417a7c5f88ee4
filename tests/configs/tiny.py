# The tiny config of the Runner tests: a toy classifier on generated images, CPU, seconds.
_base_ = ['../../configs/_base_/default_runtime.py']
custom_imports = dict(imports=['toy_components'])

model = dict(type='ToyNet', num_classes=3, channels=4)
train_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(type='ToyDataset', length=24))
val_dataloader = dict(batch_size=8, dataset=dict(type='ToyDataset', length=10))
test_dataloader = val_dataloader
val_evaluator = dict(type='ToyAccuracy')
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=6),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=3, eta_min=0.001),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3, val_interval=1)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=1, max_keep_ckpts=2, save_best='accuracy'))
randomness = dict(seed=0)
