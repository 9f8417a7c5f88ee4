# COCO 2017 detection from a local copy (nothing is downloaded): data_root holds
# annotations/instances_{train,val}2017.json and the train2017/, val2017/ image folders.
dataset_type = 'CocoDetection'
data_root = 'data/coco'
train_pipeline = [
    dict(type='RandomHorizontalFlip', p=0.5),
]
test_pipeline = []
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, ann_file=data_root + '/annotations/instances_train2017.json',
                 data_prefix=data_root + '/train2017', filter_empty_gt=True, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type=dataset_type, ann_file=data_root + '/annotations/instances_val2017.json',
                 data_prefix=data_root + '/val2017', filter_empty_gt=False, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
