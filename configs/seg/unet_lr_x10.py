# The default job with a ten times larger learning rate: a child config changes one thing.
#   python tools/train.py configs/seg/unet_lr_x10.py
_base_ = ['./unet.py']
optim_wrapper = dict(optimizer=dict(lr=0.03))
