# Iteration-based training: 1000 iterations (the generated shapes set), linear warm-up for 50, then poly decay.
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.003, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', power=0.9, eta_min=1e-5, by_epoch=False, begin=50, end=1000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
