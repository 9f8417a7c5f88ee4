# Cityscapes (fine annotations) from a local copy: set data_root to the folder that
# holds leftImg8bit/ and gtFine/ (nothing is downloaded). labelIds map to the 19 train ids.
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes'
crop_size = (512, 1024)
train_pipeline = [
    dict(type='RandomResize', min_size=512, max_size=2048),
    dict(type='SegRandomCrop', size=crop_size),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomPhotometricDistort'),
]
test_pipeline = []
train_dataloader = dict(
    batch_size=2,
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
