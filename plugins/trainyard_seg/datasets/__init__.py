"""Segmentation datasets: samples of ``inputs`` (uint8 image), ``targets`` (int64 label map), ``meta``."""
