# Fashion-MNIST from a local copy of the original IDX files (gzipped or not): data_root
# holds train-images-idx3-ubyte(.gz), ... or a raw/ folder with them. Nothing is downloaded.
dataset_type = 'FashionMNIST'
data_root = 'data/fashion_mnist'
train_pipeline = [dict(type='RandomCrop', size=28, padding=2)]
test_pipeline = []
train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='test', pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = [dict(type='Accuracy', topk=(1, 5)), dict(type='ClassificationReport')]
test_evaluator = val_evaluator
