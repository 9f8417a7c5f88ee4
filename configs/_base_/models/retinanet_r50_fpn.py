# torchvision's RetinaNet ResNet-50-FPN, built without weights (trainyard_det).
model = dict(
    type='RetinaNet',
    variant='resnet50_fpn',
    num_classes='auto',
    checkpoint=None,
    min_size=800,
    max_size=1333,
    score_thresh=0.05,
    nms_thresh=0.5,
    detections_per_img=100,
)
