# CIFAR-10 from a local copy of the python version: data_root holds cifar-10-batches-py/
# (nothing is downloaded). 50k training and 10k test images of 32x32.
dataset_type = 'CIFAR10'
data_root = 'data/cifar10'
train_pipeline = [
    dict(type='RandomCrop', size=32, padding=4),
    dict(type='RandomHorizontalFlip', p=0.5),
]
test_pipeline = []
train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='test', pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = [dict(type='Accuracy', topk=(1, 5)), dict(type='ClassificationReport')]
test_evaluator = val_evaluator
