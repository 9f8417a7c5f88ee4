# Pascal VOC 2012 segmentation from a local copy: set data_root to the folder that
# holds VOCdevkit/VOC2012 (nothing is downloaded).
dataset_type = 'VOCSegDataset'
data_root = 'data/VOCdevkit_parent'
crop_size = (512, 512)
train_pipeline = [
    dict(type='RandomResize', min_size=256, max_size=1024),
    dict(type='SegRandomCrop', size=crop_size),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomPhotometricDistort'),
]
test_pipeline = []
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric')  # classes from the dataset's metainfo
test_evaluator = val_evaluator
