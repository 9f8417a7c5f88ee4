# The detection "1x" schedule of the papers: 12 epochs, SGD (lr 0.02 for 16 images a
# batch), linear warm-up over the first 500 iterations, learning rate x0.1 after
# epochs 8 and 11.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', milestones=[8, 11], gamma=0.1, by_epoch=True, begin=0, end=12),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)
# The lr above is for 16 images a step; `trainyard train --auto-scale-lr` scales it to the
# real total batch (batch_size x processes x accumulation), as mmdet's schedules do.
auto_scale_lr = dict(enable=False, base_batch_size=16)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
