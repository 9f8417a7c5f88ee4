# The tiny config written as an OpenMMLab user would: each runtime key of MMEngine's Runner that
# trainyard has no key of its own for is honoured or named in one warning (tests/core/test_openmmlab_keys.py).
_base_ = ['./tiny.py']
default_scope = 'mmdet'
custom_imports = dict(imports=['toy_components'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'),
    resource_limit=4096,
)
data_preprocessor = dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
tta_model = dict(type='DetTTAModel', tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
launcher = 'none'
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True, detect_anomalous_params=True)
auto_scale_lr = dict(enable=False, base_batch_size=16)
sync_bn = 'torch'
find_unused_parameters = True
experiment_name = 'tiny_openmmlab'
