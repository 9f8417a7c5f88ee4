# FCOS ResNet-50-FPN, 1x schedule on COCO 2017 (lr 0.01, gradients clipped at norm 35).
_base_ = [
    '../_base_/models/fcos_r50_fpn.py',
    '../_base_/datasets/coco.py',
    '../_base_/schedules/det_1x.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/coco'
train_dataloader = dict(dataset=dict(ann_file=data_root + '/annotations/instances_train2017.json', data_prefix=data_root + '/train2017'))
val_dataloader = dict(dataset=dict(ann_file=data_root + '/annotations/instances_val2017.json', data_prefix=data_root + '/val2017'))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.01), clip_grad=dict(max_norm=35.0))
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3, save_best='bbox_mAP'))
