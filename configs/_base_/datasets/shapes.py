# The generated shapes dataset (trainyard_seg.ShapesDataset): no files, no downloads.
# Switch color_cue off to make the classes tell apart by shape alone (much harder).
dataset_type = 'ShapesDataset'
crop_size = (64, 64)
color_cue = True
train_pipeline = [
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomVerticalFlip', p=0.5),
]
test_pipeline = []
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(type=dataset_type, split='train', length=4000, size=64, color_cue=color_cue, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    dataset=dict(type=dataset_type, split='val', length=200, size=64, color_cue=color_cue, pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=16,
    num_workers=0,
    dataset=dict(type=dataset_type, split='test', length=200, size=64, color_cue=color_cue, pipeline=test_pipeline),
)
val_evaluator = dict(type='IoUMetric')  # classes from the dataset's metainfo
test_evaluator = val_evaluator
