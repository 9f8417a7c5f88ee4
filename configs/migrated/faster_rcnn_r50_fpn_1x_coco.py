# mmdet 3.x configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py, converted to trainyard.
# Each line says what it replaces; docs/migrating.md walks through the conversion.
#   python tools/train.py configs/migrated/faster_rcnn_r50_fpn_1x_coco.py \
#       --cfg-options train_dataloader.dataset.data_root=data/coco/ val_dataloader.dataset.data_root=data/coco/
_base_ = ['../_base_/default_runtime.py']

data_root = 'data/coco/'
dataset_type = 'CocoDetection'  # mmdet: CocoDataset
# mmdet: LoadImageFromFile, LoadAnnotations and PackDetInputs are the dataset's own work here.
# mmdet: Resize(scale=(1333, 800), keep_ratio=True) is the model's min_size=800, max_size=1333.
train_pipeline = [dict(type='RandomHorizontalFlip', p=0.5)]  # mmdet: RandomFlip(prob=0.5)
test_pipeline = []
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_empty_gt=True,  # mmdet: filter_cfg=dict(filter_empty_gt=True, min_size=32)
        pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        filter_empty_gt=False,  # mmdet: test_mode=True
        pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric')  # mmdet: CocoMetric(ann_file=..., metric='bbox'): ground truth comes from the dataset
test_evaluator = val_evaluator

# mmdet: FasterRCNN(backbone=ResNet(depth=50), neck=FPN, rpn_head, roi_head, train_cfg, test_cfg) is
# torchvision's Faster R-CNN ResNet-50-FPN, built whole; DetDataPreprocessor's normalisation and
# padding to 32 are done inside it.
# As mmdet does, start from ImageNet weights with model.weights_backbone='IMAGENET1K_V1' (init_cfg Pretrained
# torchvision://resnet50); left out here so that the file runs without a download.
model = dict(
    type='FasterRCNN',
    variant='resnet50_fpn',
    num_classes='auto',  # mmdet: roi_head.bbox_head.num_classes=80; 'auto' counts the training set's categories
    min_size=800,  # mmdet: Resize(scale=(1333, 800), keep_ratio=True)
    max_size=1333,
    score_thresh=0.05,  # mmdet: test_cfg.rcnn.score_thr
    nms_thresh=0.5,  # mmdet: test_cfg.rcnn.nms.iou_threshold
    detections_per_img=100,  # mmdet: test_cfg.rcnn.max_per_img
)

# mmdet: configs/_base_/schedules/schedule_1x.py, unchanged.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=16)  # lr 0.02 is for 16 images a batch (8 GPUs x 2)
# mmdet: default_hooks.visualization=DetVisualizationHook() is a custom hook here.
custom_hooks = [dict(type='DetVisualizationHook', interval=500)]
