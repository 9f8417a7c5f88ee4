# The default job with plain Adam: _delete_ replaces the base's optimizer (AdamW with
# weight_decay) entirely instead of merging into it.
#   python tools/train.py configs/seg/unet_adam.py
_base_ = ['./unet.py']
optim_wrapper = dict(optimizer=dict(_delete_=True, type='Adam', lr=0.001))
