# Pascal VOC 2007+2012 trainval for training, VOC 2007 test for evaluation, from a local
# copy: data_root holds VOC2007/ and VOC2012/ (nothing is downloaded). Evaluated with
# COCO's metric (bbox_mAP_50 is close to VOC's AP50; VOC "difficult" objects are ignored).
dataset_type = 'VOCDetection'
data_root = 'data/VOCdevkit'
train_pipeline = [
    dict(type='ResizeKeepRatio', scale=(1000, 600)),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomPhotometricDistort'),
]
test_pipeline = [dict(type='ResizeKeepRatio', scale=(1000, 600))]
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, years=('2007', '2012'), split='trainval', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, years=('2007',), split='test', filter_empty_gt=False, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
