# Generated shapes with boxes (trainyard_det.GeneratedDetDataset): three classes, no files,
# no downloads. GeneratedDetDataset(...).export_coco(folder) writes it as COCO JSON + PNGs.
dataset_type = 'GeneratedDetDataset'
image_size = 128
train_pipeline = [dict(type='RandomHorizontalFlip', p=0.5)]
test_pipeline = []
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(type=dataset_type, split='train', length=2000, size=image_size, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    dataset=dict(type=dataset_type, split='val', length=200, size=image_size, pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=8,
    num_workers=0,
    dataset=dict(type=dataset_type, split='test', length=200, size=image_size, pipeline=test_pipeline),
)
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
