# torchvision's FCOS ResNet-50-FPN (anchor-free), built without weights (trainyard_det).
model = dict(
    type='FCOS',
    variant='resnet50_fpn',
    num_classes='auto',
    checkpoint=None,
    min_size=800,
    max_size=1333,
    score_thresh=0.2,
    nms_thresh=0.6,
    detections_per_img=100,
)
