"""Segmentation models following trainyard's model contract."""
