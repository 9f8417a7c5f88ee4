# mmpretrain configs/resnet/resnet50_8xb32_in1k.py, converted to trainyard.
# Each line says what it replaces; docs/migrating.md walks through the conversion.
#   python tools/train.py configs/migrated/resnet50_8xb32_in1k.py \
#       --cfg-options train_dataloader.dataset.data_root=... val_dataloader.dataset.data_root=...
_base_ = ['../_base_/default_runtime.py']

data_root = 'data/imagenet'
dataset_type = 'ImageFolder'  # mmpretrain: ImageNet; with meta/train.txt lists use FileListDataset(ann_file=...)
image_size = 224
# mmpretrain: LoadImageFromFile and PackInputs are the dataset's own work here.
train_pipeline = [
    dict(type='RandomResizedCrop', size=image_size, antialias=True),  # mmpretrain: RandomResizedCrop(scale=224)
    dict(type='RandomHorizontalFlip', p=0.5),  # mmpretrain: RandomFlip(prob=0.5, direction='horizontal')
]
test_pipeline = [
    dict(type='Resize', size=256, antialias=True),  # mmpretrain: ResizeEdge(scale=256, edge='short')
    dict(type='CenterCrop', size=image_size),  # mmpretrain: CenterCrop(crop_size=224)
]
train_dataloader = dict(
    batch_size=32,
    num_workers=5,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=5,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='val', classes_from='train', pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))  # same in mmpretrain
test_evaluator = val_evaluator

# mmpretrain: ImageClassifier(backbone=ResNet(depth=50), neck=GlobalAveragePooling, head=LinearClsHead)
# is torchvision's resnet50 whole, its pooling and linear head included.
# ImageNet training starts from scratch, as mmpretrain's does; to fine-tune elsewhere from these weights
# use model.backbone.weights='IMAGENET1K_V1'.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='TorchvisionBackbone', name='resnet50'),
    num_classes='auto',  # mmpretrain: head.num_classes=1000; 'auto' counts the training set's classes
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),  # mmpretrain: data_preprocessor
)

# mmpretrain: configs/_base_/schedules/imagenet_bs256.py.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0001))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=1)  # mmpretrain: by_epoch=True
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(base_batch_size=256)  # lr 0.1 is for 256 images a batch (8 GPUs x 32)
