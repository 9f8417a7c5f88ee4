"""trainyard's built-in semantic segmentation plugin."""

IGNORE_INDEX = 255
"""The label value that datasets, transforms, losses and metrics all treat as "not labelled"."""
