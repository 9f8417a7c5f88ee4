#!/usr/bin/env python
"""Write scikit-learn's bundled handwritten digits (1,797 real scans, 8x8) as PNG class folders.

A real image folder to try the ImageFolder configs on, with no download:

    pip install scikit-learn
    python tools/digits_to_imagefolder.py data/digits
    python tools/train.py configs/cls/resnet18_imagefolder.py \
        --cfg-options train_dataloader.dataset.data_root=data/digits val_dataloader.dataset.data_root=data/digits

Every fifth image of each class goes to ``val/``, the rest to ``train/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to create (train/ and val/ inside)")
    parser.add_argument("--scale", type=int, default=4, help="enlarge the 8x8 scans by this factor (nearest neighbour)")
    args = parser.parse_args()
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("this script reads scikit-learn's bundled digits: pip install scikit-learn")
    import numpy as np
    from PIL import Image

    digits = load_digits()
    seen: dict[int, int] = {}
    for index, (image, label) in enumerate(zip(digits.images, digits.target)):
        seen[label] = seen.get(label, 0) + 1
        split = "val" if seen[label] % 5 == 0 else "train"
        folder = args.out / split / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (image * (255 / 16)).round().astype(np.uint8)
        Image.fromarray(pixels).resize((8 * args.scale, 8 * args.scale), Image.NEAREST).save(folder / f"{index:04d}.png")
    counts = {split: sum(1 for _ in (args.out / split).rglob("*.png")) for split in ("train", "val")}
    print(f"wrote {counts['train']} training and {counts['val']} validation images of 10 classes under {args.out}")


if __name__ == "__main__":
    main()
