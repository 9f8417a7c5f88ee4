# Your own images: data_root/train/<class>/*.jpg and data_root/val/<class>/*.jpg (PNG,
# WebP, BMP, ... too). Class names come from the train folders; val uses the same list
# (classes_from='train'), so it may lack a rare class, and a class train lacks is an error.
dataset_type = 'ImageFolder'
data_root = 'data/my_images'
image_size = 224
train_pipeline = [
    dict(type='RandomResizedCrop', size=image_size, antialias=True),
    dict(type='RandomHorizontalFlip', p=0.5),
]
test_pipeline = [
    dict(type='Resize', size=int(image_size * 256 / 224), antialias=True),
    dict(type='CenterCrop', size=image_size),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='val', classes_from='train', pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = [dict(type='Accuracy', topk=(1, 5)), dict(type='ClassificationReport')]
test_evaluator = val_evaluator
