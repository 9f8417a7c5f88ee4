# torchvision's resnet18 as an image classifier (trainyard_cls), built without weights.
# Start from local weights with model.checkpoint='path/to/resnet18.pth' (a torchvision
# or trainyard state dict; a head for another class count is re-initialised).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='TorchvisionBackbone', name='resnet18'),
    num_classes='auto',  # as many classes as the training set lists
    checkpoint=None,
    label_smoothing=0.1,
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
)
