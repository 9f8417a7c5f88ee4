# torchvision's SSDlite 320 with MobileNetV3-Large (trainyard_det), its backbone from ImageNet
# weights as torchvision's reference trains it (mobilenet_v3_large-8738ca79.pth in
# $TORCH_HOME/hub/checkpoints; with them torchvision builds the backbone without its reduced tail).
# Input is resized to 320x320 inside the model.
model = dict(
    type='SSDlite',
    variant='mobilenet_v3_large',
    num_classes='auto',
    weights_backbone='IMAGENET1K_V1',
    checkpoint=None,
    score_thresh=0.001,
    nms_thresh=0.55,
    detections_per_img=300,
)
