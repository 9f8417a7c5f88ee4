"""Entry point of the built-in semantic segmentation plugin (`trainyard_seg` in the `trainyard.plugins` group).

It registers through the same hooks as a third-party plugin and imports only
trainyard's public API. Its components arrive with the semantic segmentation task.
"""
