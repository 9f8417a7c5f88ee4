# A small CNN classifier (trainyard_cls) for quick runs and tests on the CPU.
# num_classes='auto': as many classes as the training set lists (its class folders).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='SmallCNN', channels=(32, 64, 128)),
    num_classes='auto',
    label_smoothing=0.0,
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
)
