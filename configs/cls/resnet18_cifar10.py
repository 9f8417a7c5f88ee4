# ResNet-18 on CIFAR-10 (a 3x3 stem without max pooling for 32x32 images), SGD with
# linear warm-up and cosine decay over 200 epochs: about 95% top-1 on a GPU.
# Set data_root to the folder holding cifar-10-batches-py/ (nothing is downloaded).
_base_ = [
    '../_base_/models/resnet18.py',
    '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cls_cosine_200e.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/cifar10'
model = dict(
    backbone=dict(small_input=True),
    label_smoothing=0.0,
    data_preprocessor=dict(mean=[125.307, 122.961, 113.8575], std=[51.5865, 50.847, 51.255]),
)
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2, save_best='accuracy_top1'))
