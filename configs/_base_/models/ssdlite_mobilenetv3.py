# torchvision's SSDlite 320 with MobileNetV3-Large, built without weights (trainyard_det).
# Input is resized to 320x320 inside the model.
model = dict(
    type='SSDlite',
    variant='mobilenet_v3_large',
    num_classes='auto',
    checkpoint=None,
    score_thresh=0.001,
    nms_thresh=0.55,
    detections_per_img=300,
)
