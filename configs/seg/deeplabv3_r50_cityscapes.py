# torchvision's DeepLabV3-ResNet50 on Cityscapes: set data_root to the folder holding
# leftImg8bit/ and gtFine/. The backbone starts from ImageNet weights, as torchvision's
# reference and mmseg train it (resnet50-0676ba61.pth in torch.hub's cache,
# $TORCH_HOME/hub/checkpoints; downloaded when online).
_base_ = [
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_80k.py',
]
model = dict(
    type='DeepLabV3ResNet50',
    num_classes=19,
    aux_loss=True,
    weights_backbone='IMAGENET1K_V1',
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
    # 2048x1024 validation images in 512x1024 windows, the training crop, overlapping by a third
    test_cfg=dict(mode='slide', crop_size=(512, 1024), stride=(341, 683)),
)
# --tta: mmseg's Cityscapes views, six scales with flips (12 forward passes per image)
tta_model = dict(type='SegTTAModel', scales=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75], flip=True)
model_wrapper_cfg = dict(sync_bn=True)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=8000, max_keep_ckpts=2, save_best='mIoU'),
)
