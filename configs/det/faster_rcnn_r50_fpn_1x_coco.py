# Faster R-CNN ResNet-50-FPN, 1x schedule (12 epochs, steps at 8 and 11) on COCO 2017.
# Set data_root to the local COCO copy; 16 images a batch (8 GPUs x 2) for lr 0.02
# (auto_scale_lr.base_batch_size; on fewer GPUs add --auto-scale-lr).
#   tools/dist_train.sh configs/det/faster_rcnn_r50_fpn_1x_coco.py 8
_base_ = [
    '../_base_/models/faster_rcnn_r50_fpn.py',
    '../_base_/datasets/coco.py',
    '../_base_/schedules/det_1x.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/coco'
train_dataloader = dict(dataset=dict(ann_file=data_root + '/annotations/instances_train2017.json', data_prefix=data_root + '/train2017'))
val_dataloader = dict(dataset=dict(ann_file=data_root + '/annotations/instances_val2017.json', data_prefix=data_root + '/val2017'))
test_dataloader = val_dataloader
custom_hooks = [dict(type='DetVisualizationHook', interval=500)]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3, save_best='bbox_mAP'))
