# U-Net for semantic segmentation (trainyard_seg). Images arrive as uint8 and are
# normalised on the device by the model's data preprocessor.
num_classes = 4
model = dict(
    type='UNet',
    num_classes=num_classes,
    in_channels=3,
    base_channels=8,
    depth=3,
    norm='BN',
    dice_weight=0.0,
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
)
