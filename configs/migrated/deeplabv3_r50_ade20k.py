# mmseg 1.x configs/deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py, converted to trainyard.
# Each line says what it replaces; docs/migrating.md walks through the conversion.
#   python tools/train.py configs/migrated/deeplabv3_r50_ade20k.py \
#       --cfg-options train_dataloader.dataset.data_root=... val_dataloader.dataset.data_root=...
_base_ = ['../_base_/default_runtime.py']

data_root = 'data/ade/ADEChallengeData2016'
dataset_type = 'FolderSegDataset'  # mmseg: ADE20KDataset (an image folder and a label folder)
crop_size = (512, 512)
# mmseg: LoadAnnotations(reduce_zero_label=True): label 0 ("other") is ignored, 1..150 become 0..149.
reduce_zero_label = {k: k - 1 for k in range(1, 151)}
# mmseg: LoadImageFromFile, LoadAnnotations and PackSegInputs are the dataset's own work here.
train_pipeline = [
    dict(type='RandomResize', min_size=256, max_size=1024),  # mmseg: RandomResize(scale=(2048, 512), ratio_range=(0.5, 2.0))
    dict(type='SegRandomCrop', size=crop_size),  # mmseg: RandomCrop(crop_size=crop_size, cat_max_ratio=0.75)
    dict(type='RandomHorizontalFlip', p=0.5),  # mmseg: RandomFlip(prob=0.5)
    dict(type='RandomPhotometricDistort'),  # mmseg: PhotoMetricDistortion
    dict(type='SegPad', size=crop_size, fill=255),  # mmseg: Pad(size=crop_size) with seg_pad_val=255
]
test_pipeline = []  # mmseg: Resize(scale=(2048, 512), keep_ratio=True); here evaluated at full size
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        label_map=reduce_zero_label,
        pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        label_map=reduce_zero_label,
        pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', num_classes=150)  # mmseg: IoUMetric(iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# mmseg: EncoderDecoder(backbone=ResNetV1c, decode_head=ASPPHead, auxiliary_head=FCNHead) is
# torchvision's DeepLabV3-ResNet50, whose auxiliary FCN head is aux_loss=True.
# As mmseg does, start from ImageNet weights with model.weights_backbone='IMAGENET1K_V1' (pretrained=
# 'open-mmlab://resnet50_v1c'); left out here so that the file runs without a download.
model = dict(
    type='DeepLabV3ResNet50',
    num_classes=150,  # mmseg: decode_head.num_classes=150, auxiliary_head.num_classes=150
    aux_loss=True,
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),  # mmseg: SegDataPreProcessor
)
model_wrapper_cfg = dict(sync_bn=True)  # mmseg: norm_cfg=dict(type='SyncBN')

# mmseg: configs/_base_/schedules/schedule_80k.py.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=80000, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=8000, save_best='mIoU'))
