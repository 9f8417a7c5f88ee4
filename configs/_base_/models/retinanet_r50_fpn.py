# torchvision's RetinaNet ResNet-50-FPN (trainyard_det), its backbone from ImageNet weights
# as in torchvision's reference and mmdet (resnet50-0676ba61.pth in $TORCH_HOME/hub/checkpoints).
model = dict(
    type='RetinaNet',
    variant='resnet50_fpn',
    num_classes='auto',
    weights_backbone='IMAGENET1K_V1',
    checkpoint=None,
    min_size=800,
    max_size=1333,
    score_thresh=0.05,
    nms_thresh=0.5,
    detections_per_img=100,
)
