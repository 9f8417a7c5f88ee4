# torchvision's Faster R-CNN ResNet-50-FPN (v1) (trainyard_det), its backbone from ImageNet
# weights as in torchvision's reference and mmdet (resnet50-0676ba61.pth in torch.hub's
# cache, $TORCH_HOME/hub/checkpoints; downloaded when online). From scratch: weights_backbone=None.
# Start from a whole local detector with model.checkpoint='path/to/fasterrcnn_resnet50_fpn.pth';
# class heads for another class count are re-initialised and listed in the log.
model = dict(
    type='FasterRCNN',
    variant='resnet50_fpn',
    num_classes='auto',  # as many as the training set's categories
    weights_backbone='IMAGENET1K_V1',
    checkpoint=None,
    min_size=800,
    max_size=1333,
    score_thresh=0.05,
    nms_thresh=0.5,
    detections_per_img=100,
)
