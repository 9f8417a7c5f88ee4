# Generated shape images (trainyard_cls.GeneratedClsDataset): six classes, no files, no downloads.
dataset_type = 'GeneratedClsDataset'
image_size = 32
train_pipeline = [dict(type='RandomHorizontalFlip', p=0.5)]
test_pipeline = []
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(type=dataset_type, split='train', length=4000, size=image_size, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    dataset=dict(type=dataset_type, split='val', length=500, size=image_size, pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=64,
    num_workers=0,
    dataset=dict(type=dataset_type, split='test', length=500, size=image_size, pipeline=test_pipeline),
)
val_evaluator = [dict(type='Accuracy', topk=(1, 2)), dict(type='ClassificationReport')]
test_evaluator = val_evaluator
