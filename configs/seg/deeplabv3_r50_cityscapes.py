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
)
model_wrapper_cfg = dict(sync_bn=True)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=8000, max_keep_ckpts=2, save_best='mIoU'),
)
