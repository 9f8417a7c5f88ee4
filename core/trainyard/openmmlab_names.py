"""OpenMMLab's component names (mmdet, mmseg, mmpretrain, mmcv, mmengine) and trainyard's for the same job.

A user converting an OpenMMLab config meets its names one error at a time. The
registry asks this table when a type is unknown or an argument is refused, so each
error says what to write here instead of guessing at close spellings (``CocoDataset``
is not a misspelt ``CityscapesDataset``). ``docs/migrating.md`` holds the same table
for reading; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["GUIDE", "UNKNOWN_TYPES", "ARGUMENTS", "unknown_type_hint", "argument_hint", "model_keys_hint"]

GUIDE = "see docs/migrating.md"

_READ_BY_DATASET = "leave it out of the pipeline: trainyard datasets read the image and its annotations themselves"
_PACKED_BY_DATASET = "leave it out of the pipeline: trainyard datasets return the sample dict (inputs, targets, meta) themselves"
_DETECTORS = "FasterRCNN(variant='resnet50_fpn', num_classes=...), RetinaNet or FCOS"
_SEGMENTORS = "DeepLabV3ResNet50, FCNResNet50 or UNet(num_classes=...)"

UNKNOWN_TYPES: dict[str, tuple[str, str]] = {
    # datasets
    "CocoDataset": ("mmdet", "it is CocoDetection(ann_file, data_prefix, data_root)"),
    "VOCDataset": ("mmdet", "it is VOCDetection(data_root, split, years)"),
    "ADE20KDataset": ("mmseg", "use FolderSegDataset(data_root, data_prefix=dict(img_path=..., seg_map_path=...)); "
                      "reduce_zero_label=True is label_map={k: k - 1 for k in range(1, 151)}"),
    "PascalVOCDataset": ("mmseg", "it is VOCSegDataset(data_root, split)"),
    "BaseSegDataset": ("mmseg", "it is FolderSegDataset(data_root, data_prefix=dict(img_path=..., seg_map_path=...))"),
    "ImageNet": ("mmpretrain", "use ImageFolder(data_root, data_prefix='train') for class folders, "
                 "or FileListDataset(data_root, ann_file='meta/train.txt', data_prefix='train') for a list file"),
    "CustomDataset": ("mmpretrain", "use ImageFolder(data_root, data_prefix) for class folders, "
                      "or FileListDataset(ann_file, data_prefix) for a list file"),
    # transforms
    "LoadImageFromFile": ("mmcv", _READ_BY_DATASET),
    "LoadAnnotations": ("mmdet/mmseg", _READ_BY_DATASET + " (mmseg's reduce_zero_label is the dataset's label_map)"),
    "PackDetInputs": ("mmdet", _PACKED_BY_DATASET),
    "PackSegInputs": ("mmseg", _PACKED_BY_DATASET),
    "PackClsInputs": ("mmpretrain", _PACKED_BY_DATASET),
    "PackInputs": ("mmpretrain", _PACKED_BY_DATASET),
    "DefaultFormatBundle": ("mmdet 2.x", _PACKED_BY_DATASET),
    "Collect": ("mmdet 2.x", _PACKED_BY_DATASET),
    "ImageToTensor": ("mmdet 2.x", _PACKED_BY_DATASET),
    "RandomFlip": ("mmcv", "it is RandomHorizontalFlip(p=0.5) (or RandomVerticalFlip), torchvision's"),
    "RandomChoiceResize": ("mmdet", "it is RandomShortestSize(min_size=[...], max_size=1333), torchvision's"),
    "PhotoMetricDistortion": ("mmseg/mmdet", "it is RandomPhotometricDistort(), torchvision's"),
    "ResizeEdge": ("mmpretrain", "it is Resize(size=256): torchvision resizes the short edge to an int size"),
    "FilterAnnotations": ("mmdet", "it is SanitizeBoundingBoxes(), torchvision's"),
    "MultiScaleFlipAug": ("mmdet 2.x", "give the test pipeline's transforms directly; test-time augmentation is --tta, "
                          "with the views in tta_model=dict(type=..., scales=[...], flip=True)"),
    "TestTimeAug": ("mmcv", "give the test pipeline's transforms directly; test-time augmentation is --tta, "
                    "with the views in tta_model=dict(type=..., scales=[...], flip=True)"),
    # models and their parts
    "EncoderDecoder": ("mmseg", f"use {_SEGMENTORS}"),
    "ResNet": ("mmdet/mmseg/mmpretrain", "a backbone is named inside the model: detectors take variant='resnet50_fpn', "
               "ImageClassifier takes backbone=dict(type='TorchvisionBackbone', name='resnet50')"),
    "ResNetV1c": ("mmseg", f"use {_SEGMENTORS}; their ResNet-50 is torchvision's"),
    "FPN": ("mmdet", f"the FPN is part of {_DETECTORS}, torchvision's detectors built whole"),
    "RPNHead": ("mmdet", f"the RPN is part of {_DETECTORS}"),
    "StandardRoIHead": ("mmdet", f"the RoI head is part of {_DETECTORS}"),
    "ASPPHead": ("mmseg", "the ASPP head is part of DeepLabV3ResNet50(num_classes=...)"),
    "FCNHead": ("mmseg", "the auxiliary FCN head is DeepLabV3ResNet50(aux_loss=True)"),
    "GlobalAveragePooling": ("mmpretrain", "ImageClassifier's backbone brings its own pooling: no neck"),
    "LinearClsHead": ("mmpretrain", "ImageClassifier(num_classes=...) sizes the backbone's own linear head: no head"),
    "DetDataPreprocessor": ("mmdet", "write data_preprocessor=dict(mean=..., std=...) without a type"),
    "SegDataPreProcessor": ("mmseg", "write data_preprocessor=dict(mean=..., std=...) without a type"),
    "ClsDataPreprocessor": ("mmpretrain", "write data_preprocessor=dict(mean=..., std=...) without a type"),
    # metrics
    "VOCMetric": ("mmdet", "use CocoMetric on VOCDetection: bbox_mAP_50 is VOC's mAP at IoU 0.5"),
    "SingleLabelMetric": ("mmpretrain", "it is ClassificationReport() (precision, recall and F1 per class)"),
    # hooks
    "CheckInvalidLossHook": ("mmdet", "it is NaNGuardHook(interval=50)"),
    "NumClassCheckHook": ("mmdet", "not needed: the Runner checks the model's class count against the dataset's"),
    "VisualizationHook": ("mmpretrain", "it is ClsVisualizationHook(max_images=...)"),
    "NaiveVisualizationHook": ("mmengine", "use the task's DetVisualizationHook, SegVisualizationHook or ClsVisualizationHook"),
    "RuntimeInfoHook": ("mmengine", "not needed: the Runner keeps its iteration, epoch and learning rates itself"),
}
"""An OpenMMLab name trainyard does not register, with who owns it and what to write here."""

ARGUMENTS: dict[str, tuple[frozenset[str], str, str]] = {
    "Resize": (frozenset({"scale", "keep_ratio", "scale_factor"}), "mmcv",
               "Resize(scale=(1333, 800), keep_ratio=True) is ResizeKeepRatio(scale=(1333, 800)) here; torchvision's Resize takes size"),
    "RandomResize": (frozenset({"scale", "ratio_range", "keep_ratio"}), "mmcv",
                     "RandomResize(scale, ratio_range) is torchvision's ScaleJitter(target_size=(h, w), scale_range=ratio_range) here"),
    "RandomCrop": (frozenset({"crop_size", "cat_max_ratio", "allow_negative_crop"}), "mmcv",
                   "RandomCrop(crop_size=...) is SegRandomCrop(size=...) here for segmentation, RandomCrop(size=...) otherwise"),
    "CenterCrop": (frozenset({"crop_size"}), "mmcv", "CenterCrop(crop_size=224) is CenterCrop(size=224) here"),
    "RandomResizedCrop": (frozenset({"scale", "crop_ratio_range"}), "mmpretrain",
                          "RandomResizedCrop(scale=224) is RandomResizedCrop(size=224) here; torchvision's scale is the area range"),
    "Pad": (frozenset({"size", "size_divisor", "pad_val", "seg_pad_val"}), "mmcv",
            "Pad(size=crop_size) is SegPad(size=...) here; padding to a multiple of 32 is the detectors' own"),
    "CocoMetric": (frozenset({"ann_file", "metric", "outfile_prefix", "backend_args"}), "mmdet",
                   "CocoMetric(ann_file, metric='bbox') is CocoMetric() here: it takes the ground truth from the dataset"),
    "IoUMetric": (frozenset({"iou_metrics", "nan_to_num", "beta"}), "mmseg",
                  "IoUMetric(iou_metrics=['mIoU']) is IoUMetric() here: it reports mIoU, mAcc, aAcc and per-class IoU"),
}
"""Names trainyard registers too, with the arguments only OpenMMLab's component of that name takes."""

_MODEL_KEYS = frozenset({"neck", "rpn_head", "roi_head", "bbox_head", "decode_head", "auxiliary_head", "head",
                         "train_cfg", "test_cfg"})
_DETECTOR_MODEL = (f"trainyard's detectors are torchvision's, built whole: {_DETECTORS}; their settings are "
                   "arguments (min_size, max_size, score_thresh, nms_thresh, rpn_*, box_*)")
_SEGMENTATION_MODEL = f"trainyard's segmentation models are whole: {_SEGMENTORS}; the auxiliary head is aux_loss=True"
_CLASSIFIER_MODEL = ("trainyard's ImageClassifier(backbone=dict(type='TorchvisionBackbone', name='resnet50'), "
                     "num_classes=...) has no neck or head: the backbone brings its pooling and linear head")


def unknown_type_hint(name: str) -> str:
    """``'CocoDataset is mmdet's; here it is CocoDetection(...), see docs/migrating.md.'``, or ``''``."""
    known = UNKNOWN_TYPES.get(name)
    if known is None:
        return ""
    owner, replacement = known
    return f"{name} is {owner}'s; here {replacement}, {GUIDE}."


def model_keys_hint(keys: Iterable[str], model: str = "") -> str:
    """One line on what trainyard's ``model`` takes instead of OpenMMLab's model parts among ``keys``, or ``''``."""
    found = sorted(set(keys) & _MODEL_KEYS)
    if not found:
        return ""
    if {"decode_head", "auxiliary_head"} & set(found):
        text = _SEGMENTATION_MODEL
    elif {"rpn_head", "roi_head", "bbox_head"} & set(found):
        text = _DETECTOR_MODEL
    elif "head" in found or model == "ImageClassifier":
        text = _CLASSIFIER_MODEL
    elif "neck" in found:
        text = _DETECTOR_MODEL
    else:
        text = "trainyard's models take these settings as their own arguments (score_thresh, nms_thresh, ...)"
    return f"{', '.join(found)} {'is' if len(found) == 1 else 'are'} OpenMMLab's model keys: {text}, {GUIDE}."


def argument_hint(name: str, given: Iterable[str], unexpected: Iterable[str]) -> str:
    """The trainyard form when ``name`` refused its arguments and they look like OpenMMLab's, or ``''``.

    ``given`` are all the arguments (mmpretrain's ``RandomResizedCrop(scale=224)`` fails
    for the ``size`` it lacks, not for ``scale``); ``unexpected`` the refused ones.
    """
    hints = []
    known = ARGUMENTS.get(name)
    if known is not None and set(given) & known[0]:
        hints.append(f"{known[1]}'s {known[2]}, {GUIDE}.")
    model_hint = model_keys_hint(unexpected, name)
    if model_hint:
        hints.append(model_hint)
    return " ".join(hints)
