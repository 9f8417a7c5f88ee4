"""Sliding-window against whole-image segmentation inference: agreement, accuracy and peak memory.

    python tools/slide_inference_check.py work_dirs/unet [--crop 64] [--stride 42] [--memory-size 1024 2048]

Images are mosaics of the shapes test set's 64x64 images (objects at the training
scale, as a large street scene holds objects of the training crops' scale): a 4x4
mosaic (256x256, 4x the training size) for agreement and mIoU, and a mosaic of
``--memory-size`` for peak memory. Peak memory is each mode's own process's peak
resident set (``resource.getrusage(...).ru_maxrss``), given as the total and as the
growth over the process just before inference (model built and image made).
Numbers go to docs/inference.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def mosaic(rows: int, columns: int, offset: int = 0):
    """``(image uint8 [3,H,W], labels int64 [H,W])``: shapes test images tiled ``rows x columns``."""
    import torch
    from trainyard_seg.datasets.shapes import ShapesDataset

    dataset = ShapesDataset(split="test", length=rows * columns + offset, size=64)
    items = [dataset[offset + i] for i in range(rows * columns)]
    image = torch.cat([torch.cat([items[r * columns + c]["inputs"] for c in range(columns)], dim=2) for r in range(rows)], dim=1)
    labels = torch.cat([torch.cat([items[r * columns + c]["targets"] for c in range(columns)], dim=1) for r in range(rows)], dim=0)
    return image, labels.long()


def predict(model, image, test_cfg):
    import torch

    from trainyard_seg.models.slide import check_test_cfg

    model.test_cfg = check_test_cfg(test_cfg)
    batch = model.data_preprocessor({"inputs": image[None], "meta": [{"ori_size": tuple(image.shape[-2:])}]})
    with torch.inference_mode():
        return model(batch, mode="predict")[0]


def mean_iou(prediction, labels, classes: int) -> float:
    ious = []
    for k in range(classes):
        union = ((prediction == k) | (labels == k)).sum().item()
        if union:
            ious.append(((prediction == k) & (labels == k)).sum().item() / union)
    return sum(ious) / len(ious)


def load(run: str):
    from trainyard import Predictor

    return Predictor.from_run(run, device="cpu").model


def memory_child(run: str, mode: str, height: int, width: int, crop: int, stride: int) -> None:
    model = load(run)
    image, _ = mosaic(height // 64, width // 64)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    predict(model, image, {} if mode == "whole" else dict(mode="slide", crop_size=crop, stride=stride))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": mode, "peak_mib": peak / 1024, "growth_mib": (peak - before) / 1024, "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a work dir or checkpoint of configs/seg/unet.py")
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--stride", type=int, default=42)
    parser.add_argument("--memory-size", type=int, nargs=2, default=(1024, 2048), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--child", choices=("whole", "slide"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    height, width = args.memory_size
    if args.child:
        memory_child(args.run, args.child, height, width, args.crop, args.stride)
        return
    model = load(args.run)
    classes = model.num_classes
    agree = pixels = 0
    scores = {"whole": [], "slide": []}
    for offset in range(0, 64, 16):  # four 256x256 mosaics
        image, labels = mosaic(4, 4, offset)
        whole = predict(model, image, {})
        slide = predict(model, image, dict(mode="slide", crop_size=args.crop, stride=args.stride))
        agree += (whole == slide).sum().item()
        pixels += whole.numel()
        scores["whole"].append(mean_iou(whole, labels, classes))
        scores["slide"].append(mean_iou(slide, labels, classes))
    print(f"256x256 mosaics (4x the 64x64 training size), crop {args.crop}, stride {args.stride}: slide agrees with whole-image "
          f"inference on {100 * agree / pixels:.2f}% of pixels; mIoU whole {sum(scores['whole']) / 4:.4f}, "
          f"slide {sum(scores['slide']) / 4:.4f}")
    for mode in ("whole", "slide"):
        command = [sys.executable, __file__, args.run, "--child", mode, "--crop", str(args.crop), "--stride", str(args.stride),
                   "--memory-size", str(height), str(width)]
        result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        print(f"{height}x{width}, {mode}: peak RSS {result['peak_mib']:.0f} MiB, {result['growth_mib']:.0f} MiB above the process "
              f"before inference, {result['seconds']:.1f} s")


if __name__ == "__main__":
    main()
