# torchvision's Faster R-CNN ResNet-50-FPN (v1), built without weights (trainyard_det).
# Start from local weights with model.checkpoint='path/to/fasterrcnn_resnet50_fpn.pth';
# class heads for another class count are re-initialised and listed in the log.
model = dict(
    type='FasterRCNN',
    variant='resnet50_fpn',
    num_classes='auto',  # as many as the training set's categories
    checkpoint=None,
    min_size=800,
    max_size=1333,
    score_thresh=0.05,
    nms_thresh=0.5,
    detections_per_img=100,
)
