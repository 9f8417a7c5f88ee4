# torchvision's resnet50 as an image classifier (trainyard_cls), built without weights, as
# ImageNet training itself starts (torchvision's and mmpretrain's references). To fine-tune
# from ImageNet weights: model=dict(backbone=dict(weights='IMAGENET1K_V2')) (torch.hub's cache);
# from local weights: model.checkpoint='path/to/resnet50.pth' (a torchvision or trainyard
# state dict). A head for another class count is re-initialised either way.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='TorchvisionBackbone', name='resnet50'),
    num_classes='auto',  # as many classes as the training set lists
    checkpoint=None,
    label_smoothing=0.1,
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
)
